package hashring

import "math/rand/v2"

// random is nutcracker's random distribution: every request goes to a server
// chosen uniformly at random. Like nutcracker's, it ignores weights.
type random struct{ n int }

// NewRandom returns a ring that ignores the hash and picks one of servers
// uniformly at random on every lookup, as nutcracker's random distribution
// does (weights are ignored there too).
func NewRandom(servers []Server) Ring { return random{n: len(servers)} }

// Lookup ignores hash and returns a random server index.
func (r random) Lookup(uint32) int {
	if r.n == 0 {
		return -1
	}
	return rand.IntN(r.n)
}
