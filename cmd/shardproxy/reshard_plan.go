package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/hashring"
)

// poolPlan is what a pool's migration moves: the servers of both
// placements, each one's share of the keyspace before and after, and the
// share each (old owner, new owner) pair moves.
type poolPlan struct {
	pool    *config.Pool
	from    *hashring.Placement // where the data is (migrate_from)
	to      *hashring.Placement // where it goes (the pool's own keys)
	names   []string            // identities: migrate_from's servers, then the pool's new ones
	addrs   []config.Server     // the server line of each name
	fromIdx []int               // index into names of each migrate_from server
	toIdx   []int               // index into names of each pool server
	before  []float64           // share of the keyspace per name, now
	after   []float64           // and once moved
	moves   map[[2]int]float64  // (old owner, new owner) name indexes -> share moved
	exact   bool                // computed over the 256 slots, not sampled
	keys    int                 // synthetic keys placed when not exact
}

// newPoolPlan computes the plan of p's migration, placing synthetic keys
// unless both placements are slot tables.
func newPoolPlan(p *config.Pool, synthetic int) (*poolPlan, error) {
	if p.MigrateFrom == nil {
		return nil, fmt.Errorf("pool %q has no migrate_from: nothing moves", p.Name)
	}
	mf := p.MigrateFrom
	pl := &poolPlan{pool: p, moves: map[[2]int]float64{}}
	index := map[string]int{}
	add := func(s config.Server) int {
		if i, ok := index[s.Ident]; ok {
			return i
		}
		index[s.Ident] = len(pl.names)
		pl.names = append(pl.names, s.Ident)
		pl.addrs = append(pl.addrs, s)
		return len(pl.names) - 1
	}
	for _, s := range mf.Servers {
		pl.fromIdx = append(pl.fromIdx, add(s))
	}
	for _, s := range p.Servers {
		pl.toIdx = append(pl.toIdx, add(s))
	}
	var err error
	if pl.from, err = placement(mf.Servers, mf.Hash, mf.HashTag, mf.Distribution, mf.Slots); err != nil {
		return nil, fmt.Errorf("pool %q: migrate_from: %w", p.Name, err)
	}
	if pl.to, err = placement(p.Servers, p.Hash, p.HashTag, p.Distribution, p.Slots); err != nil {
		return nil, fmt.Errorf("pool %q: %w", p.Name, err)
	}
	pl.before = make([]float64, len(pl.names))
	pl.after = make([]float64, len(pl.names))
	count := func(old, cur int, share float64) {
		o, n := pl.fromIdx[old], pl.toIdx[cur]
		pl.before[o] += share
		pl.after[n] += share
		if o != n {
			pl.moves[[2]int{o, n}] += share
		}
	}
	if fromT, toT := pl.from.SlotTable(), pl.to.SlotTable(); fromT != nil && toT != nil && mf.HashTag == p.HashTag {
		pl.exact = true
		for s := range fromT {
			count(fromT[s], toT[s], 1/float64(len(fromT)))
		}
		return pl, nil
	}
	pl.keys = synthetic
	rng := rand.New(rand.NewPCG(1, 2)) // the same keys every run: the same output for the same file
	key := make([]byte, 0, 32)
	for range synthetic {
		key = syntheticKey(key[:0], rng)
		count(pl.from.Pick(key), pl.to.Pick(key), 1/float64(synthetic))
	}
	return pl, nil
}

// syntheticKey appends a key like "key:7f3a09c2d41e" made of random bytes.
func syntheticKey(dst []byte, rng *rand.Rand) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, "key:"...)
	for range 12 {
		dst = append(dst, hex[rng.IntN(16)])
	}
	return dst
}

// placement builds the placement of servers as the proxy does.
func placement(servers []config.Server, hash, tag, dist string, slots []int) (*hashring.Placement, error) {
	hc := hashring.Config{Hash: hash, HashTag: tag, Distribution: dist, Slots: slots}
	for _, s := range servers {
		hc.Servers = append(hc.Servers, hashring.Server{Name: s.Ident, Weight: s.Weight})
	}
	return hashring.New(hc)
}

// moved returns the share of the keyspace the migration moves.
func (pl *poolPlan) moved() float64 {
	var t float64
	for _, f := range pl.moves {
		t += f
	}
	return t
}

// pairs returns the moving (old owner, new owner) pairs in name order.
func (pl *poolPlan) pairs() [][2]int { return sortedPairs(pl.moves) }

// sortedPairs returns the keys of m in name order.
func sortedPairs(m map[[2]int]float64) [][2]int {
	var out [][2]int
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b [2]int) int {
		if a[0] != b[0] {
			return a[0] - b[0]
		}
		return a[1] - b[1]
	})
	return out
}

// describe names a placement: "ketama fnv1a_64 over 3 servers".
func describe(dist, hash string, n int, slots []int) string {
	switch {
	case dist == hashring.DistJump && slots != nil:
		return fmt.Sprintf("jump (explicit slots) over %d servers", n)
	case dist == hashring.DistJump:
		return fmt.Sprintf("jump over %d servers", n)
	}
	return fmt.Sprintf("%s %s over %d servers", dist, hash, n)
}

// printPlan prints the plan of every migrating pool of cfg (or of
// o.pool), with the keys sampled on the old owners when o.sample is set.
func printPlan(cfg *config.Config, o *reshardOptions, w io.Writer) error {
	pools := migratingPools(cfg, o.pool)
	if len(pools) == 0 {
		fmt.Fprintf(w, "%s: no pool has migrate_from: nothing to move\n", o.confFile)
		return nil
	}
	for i, p := range pools {
		if i > 0 {
			fmt.Fprintln(w)
		}
		pl, err := newPoolPlan(p, o.synthetic)
		if err != nil {
			return err
		}
		pl.print(w)
		if o.sample {
			printSamples(w, pl, samplePool(pl, o.sampleKeys))
		}
	}
	return nil
}

// print writes the plan's shares, pairs and slot tables.
func (pl *poolPlan) print(w io.Writer) {
	p, mf := pl.pool, pl.pool.MigrateFrom
	fmt.Fprintf(w, "pool %s: %s -> %s\n", p.Name, describe(mf.Distribution, mf.Hash, len(mf.Servers), mf.Slots),
		describe(p.Distribution, p.Hash, len(p.Servers), p.Slots))
	how := fmt.Sprintf("estimated by placing %d synthetic keys with both placements", pl.keys)
	if pl.exact {
		how = "exact: each of the 256 slots holds 1/256 of the keyspace"
	}
	fmt.Fprintf(w, "  keyspace share per server (%s):\n", how)
	width := 6
	for _, n := range pl.names {
		width = max(width, len(n))
	}
	fmt.Fprintf(w, "    %-*s  %7s  %7s\n", width, "server", "before", "after")
	for i, n := range pl.names {
		fmt.Fprintf(w, "    %-*s  %6.2f%%  %6.2f%%\n", width, n, 100*pl.before[i], 100*pl.after[i])
	}
	fmt.Fprintf(w, "  moves %.2f%% of the keyspace:\n", 100*pl.moved())
	for _, k := range pl.pairs() {
		fmt.Fprintf(w, "    %s -> %s  %.2f%%\n", pl.names[k[0]], pl.names[k[1]], 100*pl.moves[k])
	}
	if len(pl.moves) == 0 {
		fmt.Fprintf(w, "    (no key changes owner)\n")
	}
	if t := pl.to.SlotTable(); t != nil {
		fmt.Fprintf(w, "  slot table after (paste under the pool to pin it):\n")
		printSlots(w, "    ", t, p.Servers)
	}
	if t := pl.from.SlotTable(); t != nil && mf.Slots == nil {
		fmt.Fprintf(w, "  slot table before (paste under migrate_from to pin it):\n")
		printSlots(w, "    ", t, mf.Servers)
	}
}

// printSlots writes table as a "slots:" mapping, servers in file order.
func printSlots(w io.Writer, indent string, table []int, servers []config.Server) {
	names := make([]string, len(servers))
	for i, s := range servers {
		names[i] = s.Ident
	}
	ranges := hashring.SlotRanges(table, names)
	fmt.Fprintf(w, "%sslots:\n", indent)
	for _, n := range names {
		if r, ok := ranges[n]; ok {
			fmt.Fprintf(w, "%s  %s: %q\n", indent, yamlKey(n), r)
		}
	}
}

// yamlKey quotes a server identity when YAML would not read it back as
// the same plain string ("127.0.0.1:6379" needs no quotes; "a: b" does).
func yamlKey(s string) string {
	if s == "" || strings.ContainsAny(s, " #'\"{}[],&*!|>%@`") || strings.HasSuffix(s, ":") || strings.Contains(s, ": ") {
		return fmt.Sprintf("%q", s)
	}
	return s
}
