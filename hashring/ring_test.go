package hashring

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

func equalServers(n int) []Server {
	s := make([]Server, n)
	for i := range s {
		s[i] = Server{Name: fmt.Sprintf("127.0.0.1:%d", 7000+i), Weight: 1}
	}
	return s
}

func weighted(weights ...int) []Server {
	s := make([]Server, len(weights))
	for i, w := range weights {
		s[i] = Server{Name: fmt.Sprintf("srv%d", i), Weight: w}
	}
	return s
}

// pointsPerServer counts the continuum points each server owns.
func pointsPerServer(r Ring, n int) []int {
	counts := make([]int, n)
	for _, p := range r.(*ketama).points {
		counts[p.server]++
	}
	return counts
}

func TestKetamaPointsPerServer(t *testing.T) {
	cases := []struct {
		name    string
		servers []Server
		want    []int // points per server; one entry means "all servers"
	}{
		{"1 server", equalServers(1), []int{160}},
		{"3 servers", equalServers(3), []int{160}},
		{"4 servers", equalServers(4), []int{160}},
		{"25 servers float32 loss", equalServers(25), []int{156}},
		{"47 servers float32 loss", equalServers(47), []int{156}},
		{"50 servers float32 loss", equalServers(50), []int{156}},
		// total 11: pct*160/4*4 = 14.5, 29.1, 43.6, 72.7, floored and times 4
		{"weights 1 2 3 5", weighted(1, 2, 3, 5), []int{56, 116, 172, 288}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := pointsPerServer(NewKetama(c.servers), len(c.servers))
			for i, g := range got {
				want := c.want[0]
				if len(c.want) > 1 {
					want = c.want[i]
				}
				if g != want {
					t.Fatalf("server %d: %d points, want %d (all: %v)", i, g, want, got)
				}
			}
		})
	}
}

func TestKetamaLookup(t *testing.T) {
	r := NewKetama(weighted(1, 2, 3)).(*ketama)
	pts := r.points
	for i := 1; i < len(pts); i++ {
		if pts[i-1].value > pts[i].value {
			t.Fatalf("continuum not sorted at %d", i)
		}
	}
	cases := []struct {
		name string
		hash uint32
		want int
	}{
		{"zero goes to first point", 0, int(pts[0].server)},
		{"exact point value", pts[10].value, int(pts[10].server)},
		{"just after a point", pts[10].value + 1, int(pts[11].server)},
		{"last point", pts[len(pts)-1].value, int(pts[len(pts)-1].server)},
		{"past last point wraps", math.MaxUint32, int(pts[0].server)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := r.Lookup(c.hash); got != c.want {
				t.Errorf("Lookup(%#x) = %d, want %d", c.hash, got, c.want)
			}
		})
	}
}

func TestRingsWithoutServers(t *testing.T) {
	rings := map[string]Ring{"ketama": NewKetama(nil), "modula": NewModula(nil), "random": NewRandom(nil)}
	for name, r := range rings {
		t.Run(name, func(t *testing.T) {
			if got := r.Lookup(12345); got != -1 {
				t.Errorf("Lookup = %d, want -1", got)
			}
		})
	}
}

func TestModulaLookup(t *testing.T) {
	r := NewModula(weighted(1, 2, 3, 5))
	// One slot per weight unit in configuration order, slot = hash % 11.
	slots := []int{0, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3}
	for _, h := range []uint32{0, 1, 2, 5, 6, 10, 11, 12, 21, 22, 1000, math.MaxUint32} {
		t.Run(fmt.Sprint(h), func(t *testing.T) {
			if got, want := r.Lookup(h), slots[h%11]; got != want {
				t.Errorf("Lookup(%d) = %d, want %d", h, got, want)
			}
		})
	}
}

func TestRandomLookup(t *testing.T) {
	r := NewRandom(weighted(1, 100, 1))
	seen := make([]int, 3)
	for i := 0; i < 3000; i++ {
		got := r.Lookup(7)
		if got < 0 || got > 2 {
			t.Fatalf("Lookup = %d, want 0..2", got)
		}
		seen[got]++
	}
	// Uniform, weights ignored: each server about 1000 times.
	for i, n := range seen {
		if n < 800 || n > 1200 {
			t.Errorf("server %d picked %d times of 3000, want about 1000 (%v)", i, n, seen)
		}
	}
}

func TestModulaUsesNutcrackerNameOrder(t *testing.T) {
	// Nutcracker sorts servers by name length, then bytes: a, b, z, cc.
	r := NewModula([]Server{{"b", 1}, {"a", 1}, {"cc", 1}, {"z", 1}})
	want := []int{1, 0, 3, 2}
	for h := uint32(0); h < 8; h++ {
		if got := r.Lookup(h); got != want[h%4] {
			t.Errorf("Lookup(%d) = %d, want %d", h, got, want[h%4])
		}
	}
}

func TestNutcrackerOrder(t *testing.T) {
	cases := []struct {
		name  string
		names []string
		want  []int
	}{
		{"shorter first", []string{"127.0.0.1:10000", "127.0.0.1:9000"}, []int{1, 0}},
		{"bytewise", []string{"b", "a", "\xff", "B"}, []int{3, 1, 0, 2}},
		{"sorted stays", []string{"a", "b", "c"}, []int{0, 1, 2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := make([]Server, len(c.names))
			for i, n := range c.names {
				s[i] = Server{Name: n, Weight: 1}
			}
			if got := nutcrackerOrder(s); fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("order %v, want %v", got, c.want)
			}
		})
	}
}

// TestKetamaIndexMatchesSearch checks the bucket index of the continuum
// against a plain binary search over all points, at every point value, one
// either side of it, the ends of the hash range and random hashes.
func TestKetamaIndexMatchesSearch(t *testing.T) {
	for _, n := range []int{1, 2, 4, 25, 50, 200} {
		servers := make([]Server, n)
		for i := range servers {
			servers[i] = Server{Name: fmt.Sprintf("10.0.0.%d:6379", i), Weight: 1 + i%3}
		}
		k := NewKetama(servers).(*ketama)
		want := func(h uint32) int {
			i := sort.Search(len(k.points), func(i int) bool { return k.points[i].value >= h })
			if i == len(k.points) {
				i = 0
			}
			return int(k.points[i].server)
		}
		hashes := []uint32{0, 1, math.MaxUint32, math.MaxUint32 - 1}
		for _, p := range k.points {
			hashes = append(hashes, p.value, p.value-1, p.value+1)
		}
		rng := rand.New(rand.NewPCG(uint64(n), 7))
		for range 10000 {
			hashes = append(hashes, rng.Uint32())
		}
		for _, h := range hashes {
			if got, w := k.Lookup(h), want(h); got != w {
				t.Fatalf("%d servers: Lookup(%#x) = %d, binary search says %d", n, h, got, w)
			}
		}
	}
}
