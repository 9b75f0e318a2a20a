package hashring

import (
	"cmp"
	"slices"
	"strings"
)

// Server is one server of a pool as placement sees it.
type Server struct {
	// Name is the server's identity string, as [ServerName] returns it. It is
	// what the ketama continuum hashes; the address is no part of placement.
	Name string
	// Weight is the server's share of keys; nutcracker requires at least 1.
	Weight int
}

// Ring maps a key's hash to a server. A Ring is immutable after construction
// and safe for concurrent use.
type Ring interface {
	// Lookup returns the index, into the []Server given to the constructor,
	// of the server for hash, or -1 when the ring has no server.
	Lookup(hash uint32) int
}

// weightOf returns a server's weight as the ring constructors use it:
// weights below 1 count as 1 (New rejects them before they get here).
func weightOf(s Server) uint64 {
	if s.Weight < 1 {
		return 1
	}
	return uint64(s.Weight)
}

// totalWeight sums the weights of servers as weightOf reads them.
func totalWeight(servers []Server) uint64 {
	var t uint64
	for _, s := range servers {
		t += weightOf(s)
	}
	return t
}

// cumulative returns the running sum of weights over servers taken in the
// given order: entry j is the total weight of servers order[0..j], so weight
// unit u belongs to server order[j] for the first j with cum[j] > u.
func cumulative(servers []Server, order []int) []uint64 {
	cum := make([]uint64, len(order))
	var t uint64
	for j, i := range order {
		t += weightOf(servers[i])
		cum[j] = t
	}
	return cum
}

// configOrder returns the indexes of servers in configuration order.
func configOrder(servers []Server) []int {
	order := make([]int, len(servers))
	for i := range order {
		order[i] = i
	}
	return order
}

// nutcrackerOrder returns the indexes of servers in the order nutcracker
// keeps them: while checking its configuration for duplicate names it sorts
// a pool's servers by name (shorter names first, then bytewise) and never
// restores configuration order. Modula slots and ketama ties follow it.
func nutcrackerOrder(servers []Server) []int {
	order := configOrder(servers)
	slices.SortStableFunc(order, func(a, b int) int {
		na, nb := servers[a].Name, servers[b].Name
		if len(na) != len(nb) {
			return cmp.Compare(len(na), len(nb))
		}
		return strings.Compare(na, nb)
	})
	return order
}

// ownerOf returns the first index i with cum[i] > unit, or -1 if none.
func ownerOf(cum []uint64, unit uint64) int {
	lo, hi := 0, len(cum)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if cum[mid] > unit {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	if lo == len(cum) {
		return -1
	}
	return lo
}
