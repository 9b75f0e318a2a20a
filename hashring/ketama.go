package hashring

import (
	"crypto/md5"
	"math"
	"slices"
	"strconv"
)

const (
	// ketamaPointsPerServer is nutcracker's KETAMA_POINTS_PER_SERVER.
	ketamaPointsPerServer = 160
	// ketamaPointsPerHash is how many points one md5 digest yields.
	ketamaPointsPerHash = 4
)

// ketamaPoint is one point of the continuum: a value on the circle and the
// index of the server that owns it.
type ketamaPoint struct {
	value  uint32
	server int32
}

// ketama is nutcracker's ketama continuum, sorted by point value.
type ketama struct {
	points []ketamaPoint
	// start[b] is the index of the first point whose top ketamaIndexBits
	// bits are b or more, so a lookup searches only its bucket.
	start [1<<ketamaIndexBits + 1]int32
}

// ketamaIndexBits is how many top bits of a hash pick its bucket: 4096
// buckets, about one point each for 25 servers.
const ketamaIndexBits = 12

// NewKetama returns nutcracker's ketama ring over servers: each server gets
// ketamaPoints(weight, total weight, len(servers)) points, four per md5 of
// "<name>-<i>", and a hash belongs to the first point at or after it, wrapping
// around. Points are generated in nutcracker's server order (see the package
// doc), which decides only between points of equal value. Weights below 1
// count as 1.
func NewKetama(servers []Server) Ring {
	total := totalWeight(servers)
	k := &ketama{}
	var buf []byte
	for _, i := range nutcrackerOrder(servers) {
		s := servers[i]
		pps := ketamaPoints(weightOf(s), total, len(servers))
		for j := 0; j < pps/ketamaPointsPerHash; j++ {
			buf = append(append(buf[:0], s.Name...), '-')
			buf = strconv.AppendInt(buf, int64(j), 10)
			d := md5.Sum(buf)
			for x := 0; x < ketamaPointsPerHash; x++ {
				k.points = append(k.points, ketamaPoint{value: le32(d[4*x:]), server: int32(i)})
			}
		}
	}
	// Stable, so equal values keep nutcracker's server order, as glibc's
	// merge sort does for nutcracker's qsort.
	slices.SortStableFunc(k.points, func(a, b ketamaPoint) int {
		switch {
		case a.value < b.value:
			return -1
		case a.value > b.value:
			return 1
		}
		return 0
	})
	i := 0
	for b := range k.start {
		for i < len(k.points) && k.points[i].value>>(32-ketamaIndexBits) < uint32(b) {
			i++
		}
		k.start[b] = int32(i)
	}
	return k
}

// ketamaPoints returns the number of continuum points nutcracker gives a
// server of weight w in a pool of n live servers with total weight total. The
// arithmetic is float32, as in nutcracker, which is why 25 or 50 equal
// servers get 156 points each rather than 160.
func ketamaPoints(w, total uint64, n int) int {
	if total == 0 {
		return 0
	}
	pct := float32(w) / float32(total)
	// Every step is converted explicitly so that no fused multiply-add
	// changes the rounding.
	x := float32(pct * ketamaPointsPerServer)
	x = float32(x / ketamaPointsPerHash)
	x = float32(x * float32(n))
	x = float32(float64(x) + 0.0000000001)
	return int(math.Floor(float64(x))) * ketamaPointsPerHash
}

// Lookup returns the server of the first point whose value is >= hash,
// wrapping to the first point.
func (k *ketama) Lookup(hash uint32) int {
	if len(k.points) == 0 {
		return -1
	}
	b := hash >> (32 - ketamaIndexBits)
	lo, hi := int(k.start[b]), int(k.start[b+1])
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if k.points[mid].value < hash {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == len(k.points) {
		lo = 0
	}
	return int(k.points[lo].server)
}
