package hashring_test

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/hashring"
)

func equal(n int) []int {
	w := make([]int, n)
	for i := range w {
		w[i] = 1
	}
	return w
}

// randomWeights returns count weight vectors of up to 60 servers from a
// fixed seed: weights 1..10, and with heavy also a few of 10..209.
func randomWeights(count int, heavy bool) [][]int {
	r := rand.New(rand.NewPCG(1, 2))
	vs := make([][]int, count)
	for v := range vs {
		vs[v] = make([]int, 1+r.IntN(60))
		for i := range vs[v] {
			vs[v][i] = 1 + r.IntN(10)
			if heavy && r.IntN(8) == 0 {
				vs[v][i] = 10 + r.IntN(200)
			}
		}
	}
	return vs
}

// counts returns the number of slots each of n servers holds in table.
func counts(table []int, n int) []int {
	c := make([]int, n)
	for _, i := range table {
		c[i]++
	}
	return c
}

// webster is a reference apportionment: the NumSlots slots handed out one
// by one, each to the server with the highest weight/(held+1/2), the first
// such server on ties.
func webster(weights []int) []int {
	held := make([]int, len(weights))
	for range hashring.NumSlots {
		best := 0
		for i, w := range weights {
			// w/(held_i+1/2) > w_best/(held_best+1/2)
			if w*(2*held[best]+1) > weights[best]*(2*held[i]+1) {
				best = i
			}
		}
		held[best]++
	}
	return held
}

// largestRemainder rounds each weighted share down and gives the slots left
// to the largest remainders, the first server on ties.
func largestRemainder(weights []int) []int {
	total := 0
	for _, w := range weights {
		total += w
	}
	held, order, left := make([]int, len(weights)), make([]int, len(weights)), hashring.NumSlots
	for i, w := range weights {
		held[i], order[i] = hashring.NumSlots*w/total, i
		left -= held[i]
	}
	rem := func(i int) int { return hashring.NumSlots * weights[i] % total }
	slices.SortStableFunc(order, func(a, b int) int { return rem(b) - rem(a) })
	for _, i := range order[:left] {
		held[i]++
	}
	return held
}

// checkAppend checks the table for weights against the table for all but
// the last server: every slot that moved went to the appended server, and
// came from a server that was above its new count.
func checkAppend(t *testing.T, weights []int) {
	t.Helper()
	n := len(weights) - 1
	before := hashring.DefaultSlotTable(servers(weights[:n]...))
	after := hashring.DefaultSlotTable(servers(weights...))
	was, now := counts(before, n), counts(after, n+1)
	for s := range after {
		if after[s] == before[s] {
			continue
		}
		if after[s] != n {
			t.Fatalf("weights %v: slot %d moved from server %d to old server %d", weights, s, before[s], after[s])
		}
		if was[before[s]] <= now[before[s]] {
			t.Fatalf("weights %v: slot %d taken from server %d, which holds %d of %d before", weights, s,
				before[s], was[before[s]], now[before[s]])
		}
	}
	for i := range n {
		if now[i] > was[i] {
			t.Fatalf("weights %v: server %d grew from %d to %d slots", weights, i, was[i], now[i])
		}
	}
}

func TestDefaultSlotTableEqualWeights(t *testing.T) {
	for n := 1; n <= hashring.NumSlots; n++ {
		table := hashring.DefaultSlotTable(servers(equal(n)...))
		c := counts(table, n)
		lo, hi := slices.Min(c), slices.Max(c)
		if lo != hashring.NumSlots/n || hi-lo > 1 {
			t.Fatalf("%d servers: counts %d..%d, want %d or %d", n, lo, hi,
				hashring.NumSlots/n, (hashring.NumSlots+n-1)/n)
		}
		if n > 1 {
			checkAppend(t, equal(n))
		}
	}
}

func TestDefaultSlotTableWeights(t *testing.T) {
	cases := []struct {
		weights, want []int
	}{
		{[]int{1}, []int{256}},
		{[]int{1, 1, 2}, []int{64, 64, 128}},
		{[]int{3, 1}, []int{192, 64}},
		{[]int{1, 3}, []int{64, 192}},
		{[]int{1, 1, 1}, []int{86, 85, 85}},
		{[]int{5, 1}, []int{213, 43}},
		{[]int{1, 2, 5}, []int{32, 64, 160}},
		{[]int{1, 13, 20}, []int{8, 98, 150}},
		{[]int{1, 13, 20, 1}, []int{7, 95, 147, 7}},
		{[]int{511, 1}, []int{256, 0}},
		{[]int{1, 511}, []int{1, 255}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.weights), func(t *testing.T) {
			got := counts(hashring.DefaultSlotTable(servers(c.weights...)), len(c.weights))
			if !slices.Equal(got, c.want) {
				t.Errorf("slots per server %v, want %v", got, c.want)
			}
			if q := hashring.SlotQuotas(servers(c.weights...)); !slices.Equal(q, c.want) {
				t.Errorf("SlotQuotas %v, want %v", q, c.want)
			}
		})
	}
}

// TestDefaultSlotTableRandomWeights checks, for every prefix of random
// weight vectors, that the table holds the Sainte-Laguë counts and that
// appending the next server moves only the slots it takes. With weights
// 1..10 each count is also the weighted share rounded up or down; among
// heavier servers a count can stray further (logged).
func TestDefaultSlotTableRandomWeights(t *testing.T) {
	for _, heavy := range []bool{false, true} {
		worst := 0.0
		for _, weights := range randomWeights(40, heavy) {
			total := 0
			for n := 1; n <= len(weights); n++ {
				total += weights[n-1]
				got := counts(hashring.DefaultSlotTable(servers(weights[:n]...)), n)
				if want := webster(weights[:n]); !slices.Equal(got, want) {
					t.Fatalf("weights %v: slots per server %v, want %v", weights[:n], got, want)
				}
				for i, c := range got {
					share := float64(hashring.NumSlots*weights[i]) / float64(total)
					worst = max(worst, math.Abs(float64(c)-share))
					if !heavy && math.Abs(float64(c)-share) >= 1 {
						t.Fatalf("weights %v: server %d holds %d slots, share %.2f", weights[:n], i, c, share)
					}
				}
				if n > 1 {
					checkAppend(t, weights[:n])
				}
			}
		}
		t.Logf("heavy servers %v: a count at most %.2f slots from its share", heavy, worst)
	}
}

// TestDefaultSlotTableRaiseLastWeight checks that raising the weight of
// the last server only moves slots to it.
func TestDefaultSlotTableRaiseLastWeight(t *testing.T) {
	for _, weights := range randomWeights(20, true) {
		before := hashring.DefaultSlotTable(servers(weights...))
		last := len(weights) - 1
		weights[last] += 7
		after := hashring.DefaultSlotTable(servers(weights...))
		for s := range after {
			if after[s] != before[s] && after[s] != last {
				t.Fatalf("weights %v: slot %d moved from server %d to %d", weights, s, before[s], after[s])
			}
		}
	}
}

// TestSlotQuotasNeverRise checks, for many weight vectors, that appending a
// server never raises an earlier server's count, and shows the case where
// largest-remainder rounding would.
func TestSlotQuotasNeverRise(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 3000 {
		weights := make([]int, 1+r.IntN(12))
		for i := range weights {
			weights[i] = 1 + r.IntN(30)
		}
		before := hashring.SlotQuotas(servers(weights...))
		after := hashring.SlotQuotas(servers(append(weights, 1+r.IntN(30))...))
		for i := range before {
			if after[i] > before[i] {
				t.Fatalf("weights %v: server %d: %d slots, %d after appending %d", weights, i,
					before[i], after[i], after[len(after)-1])
			}
		}
	}
	lrBefore, lrAfter := largestRemainder([]int{1, 13, 20}), largestRemainder([]int{1, 13, 20, 1})
	if lrBefore[0] != 7 || lrAfter[0] != 8 {
		t.Errorf("largest remainder for 1,13,20 (+1): server 0 holds %d then %d, want 7 then 8", lrBefore[0], lrAfter[0])
	}
}

func TestDefaultSlotTableDeterministic(t *testing.T) {
	three := hashring.DefaultSlotTable(servers(1, 1, 1))
	want := map[string]string{"a": "0-85", "b": "128-212", "c": "86-127,213-255"}
	if got := hashring.SlotRanges(three, []string{"a", "b", "c"}); !maps.Equal(got, want) {
		t.Errorf("3 equal servers: %v, want %v", got, want)
	}
	for _, weights := range randomWeights(10, true) {
		a := hashring.DefaultSlotTable(servers(weights...))
		renamed := servers(weights...)
		for i := range renamed {
			renamed[i].Name = fmt.Sprintf("shard-%d", i)
		}
		if b := hashring.DefaultSlotTable(renamed); !slices.Equal(a, b) {
			t.Fatalf("weights %v: the table changed with the servers' names", weights)
		}
		if b := hashring.DefaultSlotTable(servers(weights...)); !slices.Equal(a, b) {
			t.Fatalf("weights %v: two tables differ", weights)
		}
	}
}

// TestDefaultSlotTableBalance logs the balance table of the README.
func TestDefaultSlotTableBalance(t *testing.T) {
	t.Log("servers  mean   fewest  most  most/mean  no slot")
	for _, n := range []int{4, 10, 16, 64, 100, 128, 256} {
		c := counts(hashring.DefaultSlotTable(servers(equal(n)...)), n)
		mean := float64(hashring.NumSlots) / float64(n)
		lo, hi := slices.Min(c), slices.Max(c)
		t.Logf("%7d  %5.2f  %6d  %4d  %9.2f  %7d", n, mean, lo, hi, float64(hi)/mean, n-len(slices.DeleteFunc(c, func(x int) bool { return x == 0 })))
		if hi-lo > 1 || lo == 0 {
			t.Errorf("%d servers: %d..%d slots", n, lo, hi)
		}
	}
}

func TestSlotRanges(t *testing.T) {
	table := make([]int, hashring.NumSlots)
	for s := range table {
		table[s] = s / 64 % 2 // 0-63 -> 0, 64-127 -> 1, ...
	}
	table[130], table[255], table[254] = 2, 2, -1
	got := hashring.SlotRanges(table, []string{"a", "b", "c", "empty"})
	want := map[string]string{"a": "0-63,128-129,131-191", "b": "64-127,192-253", "c": "130,255"}
	if !maps.Equal(got, want) {
		t.Errorf("SlotRanges = %v, want %v", got, want)
	}
}

// TestSlotRangesRoundTrip writes default tables as the slots key of a
// configuration file and checks that the config package reads back the
// same table.
func TestSlotRangesRoundTrip(t *testing.T) {
	vectors := [][]int{equal(1), equal(2), equal(3), equal(7), equal(64), equal(255), equal(256), {1, 1, 2}, {3, 1}}
	vectors = append(vectors, randomWeights(10, true)...)
	for _, weights := range vectors {
		table := hashring.DefaultSlotTable(servers(weights...))
		names := make([]string, len(weights))
		var b strings.Builder
		b.WriteString("p:\n  listen: 127.0.0.1:22121\n  distribution: jump\n  servers:\n")
		for i, w := range weights {
			names[i] = fmt.Sprintf("shard-%d", i)
			fmt.Fprintf(&b, "    - 10.0.0.%d:6379:%d %s\n", i, w, names[i])
		}
		b.WriteString("  slots:\n")
		for name, ranges := range hashring.SlotRanges(table, names) {
			fmt.Fprintf(&b, "    %s: %q\n", name, ranges)
		}
		cfg, err := config.Parse([]byte(b.String()))
		if err != nil {
			t.Fatalf("weights %v: %v", weights, err)
		}
		if got := cfg.Pools[0].Slots; !slices.Equal(got, table) {
			t.Fatalf("weights %v: the table read back differs", weights)
		}
	}
}

// TestJumpPoolLimits checks the pools New refuses, and that the config
// package refuses the same ones.
func TestJumpPoolLimits(t *testing.T) {
	all0 := make([]int, hashring.NumSlots)
	cases := []struct {
		name    string
		weights []int
		slots   []int
		ok      bool
	}{
		{"256 servers", equal(256), nil, true},
		{"257 servers", equal(257), nil, false},
		{"257 servers, explicit table", equal(257), all0, false},
		{"share rounds to nothing", []int{1, 1000}, nil, false},
		{"share a half, first", []int{1, 511}, nil, true},
		{"share a half, last", []int{511, 1}, nil, false},
		{"slotless server in an explicit table", []int{1, 1000}, all0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := hashring.New(hashring.Config{Distribution: "jump", Servers: servers(c.weights...), Slots: c.slots})
			if (err == nil) != c.ok {
				t.Errorf("New: err = %v, want ok = %v", err, c.ok)
			}
		})
	}
	vectors := randomWeights(200, true)
	for v := range 200 {
		vectors = append(vectors, append(equal(v%60+1), 1+v*v%300), append([]int{1 + v*v%300}, equal(v%60+1)...))
	}
	refused := 0
	for _, weights := range vectors {
		_, err := hashring.New(hashring.Config{Distribution: "jump", Servers: servers(weights...)})
		if err != nil {
			refused++
		}
		var b strings.Builder
		b.WriteString("p:\n  listen: 127.0.0.1:22121\n  distribution: jump\n  servers:\n")
		for i, w := range weights {
			fmt.Fprintf(&b, "    - 10.0.0.%d:6379:%d\n", i, w)
		}
		_, cerr := config.Parse([]byte(b.String()))
		if (err == nil) != (cerr == nil) {
			t.Fatalf("weights %v: New: %v; config: %v", weights, err, cerr)
		}
	}
	t.Logf("%d of %d pools refused", refused, len(vectors))
	if refused < len(vectors)/10 || refused > len(vectors)*9/10 {
		t.Errorf("%d of %d pools refused: the vectors hardly test the rule", refused, len(vectors))
	}
}
