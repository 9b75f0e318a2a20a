package hashring

import (
	"math/bits"
	"slices"
	"strconv"
	"strings"
)

// DefaultSlotTable returns the slot table (NumSlots entries, slot -> server
// index) the "jump" distribution uses when none is configured. It is
// balanced, and growing a pool moves as few slots as possible:
//
//   - server i holds [SlotQuotas](servers)[i] slots, its weighted share of
//     the NumSlots slots rounded (with equal weights the counts differ by at
//     most one);
//   - the table is built by appending the servers in order: server 0 starts
//     with every slot, and each appended server takes from every earlier
//     server the slots it holds above its new quota, highest-numbered
//     first. The table for servers[:n+1] is thus the table for servers[:n]
//     plus the slots server n takes: appending a server to a pool moves
//     exactly the slots the new server gets, each from a server above its
//     new quota, and no slot between the servers already there.
//
// The table depends on the servers' weights in order, not on their names.
// Removing, reordering or reweighting any server but the last reshuffles
// slots: pin the table with [Config.Slots] before doing that. Servers past
// the first NumSlots, and servers so light that their share rounds to
// nothing, get no slot; [New] refuses such pools. With no servers every
// entry is -1.
func DefaultSlotTable(servers []Server) []int {
	table := make([]int, NumSlots)
	if len(servers) == 0 {
		for s := range table {
			table[s] = -1
		}
		return table
	}
	held := make([]int, len(servers)) // slots each server holds in table
	held[0] = NumSlots                // and table is all server 0's
	var q quotas
	q.add(0, weightOf(servers[0]))
	for n := 1; n < len(servers); n++ {
		quota := q.add(n, weightOf(servers[n]))
		for s := NumSlots - 1; s >= 0; s-- {
			if o := table[s]; held[o] > quota[o] {
				table[s] = n
				held[o]--
				held[n]++
			}
		}
	}
	return table
}

// SlotQuotas returns how many slots each server holds in [DefaultSlotTable].
//
// The counts are a Sainte-Laguë (Webster) apportionment of the NumSlots
// slots by weight: every server has claims of priority weight/(k+1/2) for
// k = 0, 1, 2, ..., and the NumSlots claims of highest priority win, equal
// priorities going in server order. This is the divisor method that rounds
// shares the ordinary way, at one half, so it favours neither heavy nor
// light servers, and with equal weights the counts differ by at most one.
//
// A divisor method is chosen because appending a server never raises an
// earlier server's count: the claims of the servers already there keep
// their order (the new server comes last on ties), and the new server's
// claims can only push some of them out of the first NumSlots. That is what
// lets an appended server take its slots without any other slot moving.
// Largest-remainder rounding lacks this: with weights 1, 13, 20 it gives 7,
// 98, 151 slots, and after appending a server of weight 1 it gives 8, 95,
// 146, 7, so server 0 would have to gain a slot.
//
// The price is that of every divisor method: a count can stray more than
// one slot from the exact share when many light servers share the table
// with heavy ones (by up to 3.4 slots in the package tests' random pools
// mixing weights 1-10 with 10-209; with weights 1-10 alone each count
// stayed within one of its share). A server whose first claim is not among
// the first NumSlots gets no slot.
func SlotQuotas(servers []Server) []int {
	var q quotas
	var quota []int
	for i, s := range servers {
		quota = q.add(i, weightOf(s))
	}
	return append([]int(nil), quota...)
}

// claim is a server's claim on its (k+1)-th slot, with priority
// weight/(k+1/2).
type claim struct {
	server int
	weight uint64
	k      uint64
}

// before reports whether claim a wins over b: higher priority, or the same
// priority and an earlier server. Priorities are compared exactly, as
// a.weight*(2b.k+1) against b.weight*(2a.k+1) in 128 bits.
func (a claim) before(b claim) bool {
	lh, ll := bits.Mul64(a.weight, 2*b.k+1)
	rh, rl := bits.Mul64(b.weight, 2*a.k+1)
	switch {
	case lh != rh:
		return lh > rh
	case ll != rl:
		return ll > rl
	}
	return a.server < b.server
}

// quotas is a Sainte-Laguë apportionment of NumSlots slots over the servers
// added so far.
type quotas struct {
	top, next []claim // the winning claims, best first; next is scratch
	count     []int   // winning claims per server
}

// add appends server i (the next in order) of weight w and returns every
// server's slot count; the slice is reused by the next add.
func (q *quotas) add(i int, w uint64) []int {
	merged := q.next[:0]
	j, own := 0, claim{server: i, weight: w}
	for len(merged) < NumSlots {
		if j < len(q.top) && q.top[j].before(own) {
			merged = append(merged, q.top[j])
			j++
		} else {
			merged = append(merged, own)
			own.k++
		}
	}
	q.top, q.next = merged, q.top
	q.count = slices.Grow(q.count[:0], i+1)[:i+1]
	clear(q.count)
	for _, c := range q.top {
		q.count[c.server]++
	}
	return q.count
}

// SlotRanges describes table (slot -> index into names) as the "slots:" key
// of a configuration file writes it: for each server holding slots, its
// slots as comma-separated ranges in ascending order, such as
// "0-63,128-130" or "7". Servers without a slot have no entry, and a slot
// whose entry is not an index into names is in no range.
func SlotRanges(table []int, names []string) map[string]string {
	var ranges = make([][]string, len(names))
	for lo := 0; lo < len(table); {
		owner, hi := table[lo], lo
		for hi+1 < len(table) && table[hi+1] == owner {
			hi++
		}
		if owner >= 0 && owner < len(names) {
			r := strconv.Itoa(lo)
			if hi > lo {
				r += "-" + strconv.Itoa(hi)
			}
			ranges[owner] = append(ranges[owner], r)
		}
		lo = hi + 1
	}
	m := make(map[string]string, len(names))
	for i, rs := range ranges {
		if len(rs) > 0 {
			m[names[i]] = strings.Join(rs, ",")
		}
	}
	return m
}
