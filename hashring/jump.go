package hashring

import (
	"github.com/cespare/xxhash/v2"
	jump "github.com/dgryski/go-jump"
)

// NumSlots is the number of logical slots of the "jump" distribution.
const NumSlots = 256

// slotOf returns the slot of the bytes a key hashes on.
func slotOf(hashed []byte) int {
	return int(jump.Hash(xxhash.Sum64(hashed), NumSlots))
}

// DefaultSlotTable returns the slot table the "jump" distribution uses when
// none is configured: servers are expanded into Weight buckets each (weights
// below 1 count as 1) in order, and slot s goes to the server owning bucket
// jump.Hash(splitmix64(s), total weight). Appending a server moves only the
// slots its buckets take over. With no servers every entry is -1.
func DefaultSlotTable(servers []Server) []int {
	table := make([]int, NumSlots)
	cum := cumulative(servers, configOrder(servers))
	total := totalWeight(servers)
	for s := range table {
		if total == 0 {
			table[s] = -1
			continue
		}
		bucket := jump.Hash(splitmix64(uint64(s)), int(total))
		table[s] = ownerOf(cum, uint64(bucket))
	}
	return table
}

// splitmix64 is the SplitMix64 finalizer; it spreads slot numbers over 64
// bits before they are fed to jump.Hash.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}
