package proxy_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// mcState is what one run of the client script remembers between steps.
type mcState map[string]*memcache.Item

// mcStep is one operation of the client script. Its result is a text that
// must be the same through the proxy and straight from memcached; want, if
// set, must be part of it (so a step that fails on both sides is noticed).
type mcStep struct {
	name string
	do   func(c *memcache.Client, st mcState) string
	want string
}

// mcItemText describes a Get result without its cas unique, which differs
// from server to server; large values are described by length and digest.
func mcItemText(it *memcache.Item, err error) string {
	if err != nil {
		return "err=" + err.Error()
	}
	v := fmt.Sprintf("%q", it.Value)
	if len(it.Value) > 64 {
		v = fmt.Sprintf("%d bytes sha256:%x", len(it.Value), sha256.Sum256(it.Value))
	}
	return fmt.Sprintf("key=%s flags=%d value=%s", it.Key, it.Flags, v)
}

func mcErrText(err error) string { return fmt.Sprintf("err=%v", err) }

func mcSet(key, val string, flags uint32) func(*memcache.Client, mcState) string {
	return func(c *memcache.Client, _ mcState) string {
		return mcErrText(c.Set(&memcache.Item{Key: key, Value: []byte(val), Flags: flags}))
	}
}

func mcGet(key string) func(*memcache.Client, mcState) string {
	return func(c *memcache.Client, _ mcState) string { return mcItemText(c.Get(key)) }
}

func mcStore(op func(*memcache.Client, *memcache.Item) error, key, val string) func(*memcache.Client, mcState) string {
	return func(c *memcache.Client, _ mcState) string {
		return mcErrText(op(c, &memcache.Item{Key: key, Value: []byte(val)}))
	}
}

func mcIncr(key string, delta uint64, up bool) func(*memcache.Client, mcState) string {
	return func(c *memcache.Client, _ mcState) string {
		var n uint64
		var err error
		if up {
			n, err = c.Increment(key, delta)
		} else {
			n, err = c.Decrement(key, delta)
		}
		return fmt.Sprintf("n=%d err=%v", n, err)
	}
}

// mcGetMulti reads 100 stored keys and 50 missing ones in one call.
func mcGetMulti(c *memcache.Client, _ mcState) string {
	keys := append(numberedKeys("multi", 100), numberedKeys("multi-miss", 50)...)
	m, err := c.GetMulti(keys)
	if err != nil {
		return mcErrText(err)
	}
	var out []string
	for k, it := range m {
		out = append(out, k+" "+mcItemText(it, nil))
	}
	sort.Strings(out)
	return fmt.Sprintf("%d found: %s", len(m), strings.Join(out, ", "))
}

// mcCasSteps checks CompareAndSwap: a fresh swap, a conflict after another
// write, and a swap of a deleted item.
var mcCasSteps = []mcStep{
	{"cas setup", mcSet("cas", "v1", 0), "err=<nil>"},
	{"cas read", func(c *memcache.Client, st mcState) string {
		it, err := c.Get("cas")
		st["cas"] = it
		return mcItemText(it, err)
	}, `value="v1"`},
	{"cas swap", func(c *memcache.Client, st mcState) string {
		it := st["cas"]
		it.Value = []byte("v2")
		return mcErrText(c.CompareAndSwap(it))
	}, "err=<nil>"},
	{"cas conflict", func(c *memcache.Client, st mcState) string {
		it := st["cas"] // its cas unique is now stale
		it.Value = []byte("v3")
		return mcErrText(c.CompareAndSwap(it))
	}, memcache.ErrCASConflict.Error()},
	{"cas value kept", mcGet("cas"), `value="v2"`},
	{"cas deleted", func(c *memcache.Client, st mcState) string {
		it, err := c.Get("cas")
		if err != nil {
			return mcErrText(err)
		}
		if err := c.Delete("cas"); err != nil {
			return mcErrText(err)
		}
		return mcErrText(c.CompareAndSwap(it))
	}, memcache.ErrCacheMiss.Error()},
}

// mcValueSteps stores values of awkward sizes and bytes.
var mcValueSteps = []mcStep{
	{"empty value", mcSet("empty", "", 3), "err=<nil>"},
	{"get empty", mcGet("empty"), `flags=3 value=""`},
	{"binary value", mcSet("bin", "a\r\nb\x00c\r\nEND\r\n\x00", 0), "err=<nil>"},
	{"get binary", mcGet("bin"), `value="a\r\nb\x00c\r\nEND\r\n\x00"`},
	{"500 KB", mcSet("v500k", strings.Repeat("abcdefghij", 50_000), 1), "err=<nil>"},
	{"get 500 KB", mcGet("v500k"), "500000 bytes"},
	{"1,000,000 bytes", mcSet("v1m", strings.Repeat("0123456789", 100_000), 2), "err=<nil>"},
	{"get 1,000,000 bytes", mcGet("v1m"), "1000000 bytes"},
	{"over the limit", mcSet("v1m", strings.Repeat("x", 1_100_000), 0), "object too large"},
	{"get after over the limit", mcGet("v1m"), ""},
	{"key of 250 bytes", mcSet(strings.Repeat("k", 250), "long", 0), "err=<nil>"},
	{"get key of 250 bytes", mcGet(strings.Repeat("k", 250)), `value="long"`},
	{"key of 251 bytes", mcSet(strings.Repeat("k", 251), "long", 0), memcache.ErrMalformedKey.Error()},
	{"get key of 251 bytes", mcGet(strings.Repeat("k", 251)), memcache.ErrMalformedKey.Error()},
}

// mcScript is the whole client script, run through the proxy and straight
// against one memcached.
func mcScript() []mcStep {
	steps := []mcStep{
		{"set", mcSet("a", "1", 7), "err=<nil>"},
		{"get", mcGet("a"), `flags=7 value="1"`},
		{"get miss", mcGet("nope"), memcache.ErrCacheMiss.Error()},
		{"add existing", mcStore((*memcache.Client).Add, "a", "2"), memcache.ErrNotStored.Error()},
		{"add new", mcStore((*memcache.Client).Add, "added", "2"), "err=<nil>"},
		{"replace existing", mcStore((*memcache.Client).Replace, "a", "r"), "err=<nil>"},
		{"replace missing", mcStore((*memcache.Client).Replace, "nope", "r"), memcache.ErrNotStored.Error()},
		{"append", mcStore((*memcache.Client).Append, "a", "-tail"), "err=<nil>"},
		{"prepend", mcStore((*memcache.Client).Prepend, "a", "head-"), "err=<nil>"},
		{"append missing", mcStore((*memcache.Client).Append, "nope", "x"), memcache.ErrNotStored.Error()},
		{"prepend missing", mcStore((*memcache.Client).Prepend, "nope", "x"), memcache.ErrNotStored.Error()},
		{"get after append", mcGet("a"), `value="head-r-tail"`},
		{"delete hit", func(c *memcache.Client, _ mcState) string { return mcErrText(c.Delete("added")) }, "err=<nil>"},
		{"delete miss", func(c *memcache.Client, _ mcState) string { return mcErrText(c.Delete("added")) }, memcache.ErrCacheMiss.Error()},
		{"set counter", mcSet("n", "10", 0), "err=<nil>"},
		{"incr", mcIncr("n", 5, true), "n=15 err=<nil>"},
		{"decr below zero", mcIncr("n", 20, false), "n=0 err=<nil>"},
		{"incr missing", mcIncr("nope", 1, true), memcache.ErrCacheMiss.Error()},
		{"decr missing", mcIncr("nope", 1, false), memcache.ErrCacheMiss.Error()},
		{"incr non-numeric", mcIncr("a", 1, true), "non-numeric"},
		{"set max", mcSet("max", "18446744073709551615", 0), "err=<nil>"},
		{"incr wraps", mcIncr("max", 1, true), "n=0 err=<nil>"},
		{"touch hit", func(c *memcache.Client, _ mcState) string { return mcErrText(c.Touch("a", 100)) }, "err=<nil>"},
		{"touch miss", func(c *memcache.Client, _ mcState) string { return mcErrText(c.Touch("nope", 100)) }, memcache.ErrCacheMiss.Error()},
		{"get and touch hit", func(c *memcache.Client, _ mcState) string { return mcItemText(c.GetAndTouch("a", 100)) }, "head-r-tail"},
		{"get and touch miss", func(c *memcache.Client, _ mcState) string { return mcItemText(c.GetAndTouch("nope", 100)) }, memcache.ErrCacheMiss.Error()},
	}
	steps = append(steps, mcCasSteps...)
	steps = append(steps, mcValueSteps...)
	for i, k := range numberedKeys("multi", 100) {
		steps = append(steps, mcStep{"multi set " + k, mcSet(k, fmt.Sprintf("value-%d", i), uint32(i)), "err=<nil>"})
	}
	return append(steps,
		mcStep{"get multi with misses", mcGetMulti, "100 found"},
		mcStep{"flush all", func(c *memcache.Client, _ mcState) string { return mcErrText(c.FlushAll()) }, "err=<nil>"},
		mcStep{"get after flush", mcGet("a"), memcache.ErrCacheMiss.Error()},
		mcStep{"get multi after flush", mcGetMulti, "0 found"},
	)
}

// TestMemcacheClientSameAsMemcached runs the gomemcache script through the
// proxy (four servers) and straight against one memcached: every step gives
// the same result, and the keys really are spread over every server.
func TestMemcacheClientSameAsMemcached(t *testing.T) {
	f := newMemcacheFixture(t, 4)
	through, direct := memcache.New(f.addr), memcache.New(f.direct.Addr)
	for _, c := range []*memcache.Client{through, direct} {
		c.Timeout = 10 * time.Second
		t.Cleanup(func() { c.Close() })
	}
	stThrough, stDirect := mcState{}, mcState{}
	for _, s := range mcScript() {
		got, want := s.do(through, stThrough), s.do(direct, stDirect)
		if got != want {
			t.Errorf("%s: through the proxy %.300s, memcached %.300s", s.name, got, want)
		}
		if !strings.Contains(want, s.want) {
			t.Errorf("%s: memcached answered %.300s, the script expects %q", s.name, want, s.want)
		}
		if s.name == "get multi with misses" {
			f.checkSpread(t, numberedKeys("multi", 100))
		}
	}
	for i, b := range f.backends {
		if n := f.count(t, i, numberedKeys("multi", 100)); n != 0 {
			t.Errorf("backend %s holds %d keys after flush_all through the proxy", b.Addr, n)
		}
	}
}

// TestMemcacheConcurrentClients runs 200 clients at once, each pipelining
// sets and gets of its own keys through the proxy, and checks every value.
func TestMemcacheConcurrentClients(t *testing.T) {
	f := newMemcacheFixture(t, 4)
	const clients, rounds, perRound = 200, 5, 10
	errs := make(chan error, clients)
	for g := range clients {
		c := dialClient(t, f.addr)
		go func() { errs <- mcClientRounds(c, g, rounds, perRound) }()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// mcClientRounds is one concurrent client: each round sets perRound keys
// and reads them back one by one and all at once, in one write. In the
// first round every twentieth client stores one value of 700 KB, so the
// frames queued on a server connection may exceed 1 MB together.
func mcClientRounds(c *clientConn, g, rounds, perRound int) error {
	for r := range rounds {
		var req, want bytes.Buffer
		keys := numberedKeys(fmt.Sprintf("conc:%d", g), perRound)
		var values strings.Builder
		for i, k := range keys {
			v := mcConcValue(g, r, i)
			fmt.Fprintf(&req, "set %s %d 0 %d\r\n%s\r\n", k, i, len(v), v)
			want.WriteString("STORED\r\n")
			fmt.Fprintf(&values, "VALUE %s %d %d\r\n%s\r\n", k, i, len(v), v)
		}
		for i, k := range keys {
			v := mcConcValue(g, r, i)
			fmt.Fprintf(&req, "get %s\r\n", k)
			fmt.Fprintf(&want, "VALUE %s %d %d\r\n%s\r\nEND\r\n", k, i, len(v), v)
		}
		fmt.Fprintf(&req, "get %s\r\n", strings.Join(keys, " "))
		want.WriteString(values.String() + "END\r\n")
		got, err := c.tryRoundTrip(req.String())
		if err != nil {
			return fmt.Errorf("client %d round %d: %w", g, r, err)
		}
		if got != want.String() {
			return fmt.Errorf("client %d round %d: got %d bytes, want %d; first difference at byte %d: got %.100q, want %.100q",
				g, r, len(got), want.Len(), mcDiffAt(got, want.String()), got[mcDiffAt(got, want.String()):], want.String()[mcDiffAt(got, want.String()):])
		}
	}
	return nil
}

// mcConcValue is the value client g stores under its key i in round r.
func mcConcValue(g, r, i int) string {
	n := (g*7 + i*13 + r) % 300
	if g%20 == 0 && i == 0 && r == 0 {
		n = 700 << 10
	}
	return fmt.Sprintf("%d/%d/%d/%s", g, r, i, strings.Repeat(string(rune('a'+(g+r+i)%26)), n))
}

// mcDiffAt returns the index of the first byte where a and b differ.
func mcDiffAt(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

// TestMemcacheLargeFramesAmongSmall mixes clients that pipeline values of
// 600 KB (so a server connection's write buffer outgrows 1 MB) with clients
// busy with small requests on the same server connection; every value must
// come back intact.
func TestMemcacheLargeFramesAmongSmall(t *testing.T) {
	f := newMemcacheFixture(t, 1)
	const small, large, rounds = 20, 2, 6
	errs := make(chan error, small+large)
	for g := range small + large {
		c := dialClient(t, f.addr)
		go func() {
			if g < large {
				errs <- mcLargeRounds(c, g, rounds)
				return
			}
			errs <- mcClientRounds(c, g+1, rounds*3, 5)
		}()
	}
	for range small + large {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// mcLargeRounds sets two 600 KB values in one write and reads them back.
func mcLargeRounds(c *clientConn, g, rounds int) error {
	for r := range rounds {
		var req, want strings.Builder
		for i := range 2 {
			k := fmt.Sprintf("large:%d:%d", g, i)
			v := strings.Repeat(string(rune('A'+(g+r+i)%26)), 600<<10)
			fmt.Fprintf(&req, "set %s 0 0 %d\r\n%s\r\nget %s\r\n", k, len(v), v, k)
			fmt.Fprintf(&want, "STORED\r\nVALUE %s 0 %d\r\n%s\r\nEND\r\n", k, len(v), v)
		}
		got, err := c.tryRoundTrip(req.String())
		if err != nil {
			return fmt.Errorf("large client %d round %d: %w", g, r, err)
		}
		if d := mcDiffAt(got, want.String()); d != len(got) || len(got) != want.Len() {
			return fmt.Errorf("large client %d round %d: got %d bytes, want %d; first difference at byte %d: %.80q",
				g, r, len(got), want.Len(), d, got[d:])
		}
	}
	return nil
}
