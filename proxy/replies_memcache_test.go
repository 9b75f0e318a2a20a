package proxy_test

import (
	"crypto/sha256"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/shardproxy/shardproxy/internal/proxytest"
)

// scriptState is what one run of the client script remembers between steps.
type scriptState map[string]*memcache.Item

// clientStep is one operation of the client script. Its result is a text that
// must be the same through the proxy and straight from memcached; want, if
// set, must be part of it (so a step that fails on both sides is noticed).
type clientStep struct {
	name string
	do   func(c *memcache.Client, st scriptState) string
	want string
}

// itemText describes a Get result without its cas unique, which differs
// from server to server; large values are described by length and digest.
func itemText(it *memcache.Item, err error) string {
	if err != nil {
		return "err=" + err.Error()
	}
	v := fmt.Sprintf("%q", it.Value)
	if len(it.Value) > 64 {
		v = fmt.Sprintf("%d bytes sha256:%x", len(it.Value), sha256.Sum256(it.Value))
	}
	return fmt.Sprintf("key=%s flags=%d value=%s", it.Key, it.Flags, v)
}

func errText(err error) string { return fmt.Sprintf("err=%v", err) }

func setOp(key, val string, flags uint32) func(*memcache.Client, scriptState) string {
	return func(c *memcache.Client, _ scriptState) string {
		return errText(c.Set(&memcache.Item{Key: key, Value: []byte(val), Flags: flags}))
	}
}

func getOp(key string) func(*memcache.Client, scriptState) string {
	return func(c *memcache.Client, _ scriptState) string { return itemText(c.Get(key)) }
}

func storeOp(op func(*memcache.Client, *memcache.Item) error, key, val string) func(*memcache.Client, scriptState) string {
	return func(c *memcache.Client, _ scriptState) string {
		return errText(op(c, &memcache.Item{Key: key, Value: []byte(val)}))
	}
}

func incrOp(key string, delta uint64, up bool) func(*memcache.Client, scriptState) string {
	return func(c *memcache.Client, _ scriptState) string {
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

// getMultiOp reads 100 stored keys and 50 missing ones in one call.
func getMultiOp(c *memcache.Client, _ scriptState) string {
	keys := append(proxytest.NumberedKeys("multi", 100), proxytest.NumberedKeys("multi-miss", 50)...)
	m, err := c.GetMulti(keys)
	if err != nil {
		return errText(err)
	}
	var out []string
	for k, it := range m {
		out = append(out, k+" "+itemText(it, nil))
	}
	sort.Strings(out)
	return fmt.Sprintf("%d found: %s", len(m), strings.Join(out, ", "))
}

// casSteps checks CompareAndSwap: a fresh swap, a conflict after another
// write, and a swap of a deleted item.
var casSteps = []clientStep{
	{"cas setup", setOp("cas", "v1", 0), "err=<nil>"},
	{"cas read", func(c *memcache.Client, st scriptState) string {
		it, err := c.Get("cas")
		st["cas"] = it
		return itemText(it, err)
	}, `value="v1"`},
	{"cas swap", func(c *memcache.Client, st scriptState) string {
		it := st["cas"]
		it.Value = []byte("v2")
		return errText(c.CompareAndSwap(it))
	}, "err=<nil>"},
	{"cas conflict", func(c *memcache.Client, st scriptState) string {
		it := st["cas"] // its cas unique is now stale
		it.Value = []byte("v3")
		return errText(c.CompareAndSwap(it))
	}, memcache.ErrCASConflict.Error()},
	{"cas value kept", getOp("cas"), `value="v2"`},
	{"cas deleted", func(c *memcache.Client, st scriptState) string {
		it, err := c.Get("cas")
		if err != nil {
			return errText(err)
		}
		if err := c.Delete("cas"); err != nil {
			return errText(err)
		}
		return errText(c.CompareAndSwap(it))
	}, memcache.ErrCacheMiss.Error()},
}

// valueSteps stores values of awkward sizes and bytes.
var valueSteps = []clientStep{
	{"empty value", setOp("empty", "", 3), "err=<nil>"},
	{"get empty", getOp("empty"), `flags=3 value=""`},
	{"binary value", setOp("bin", "a\r\nb\x00c\r\nEND\r\n\x00", 0), "err=<nil>"},
	{"get binary", getOp("bin"), `value="a\r\nb\x00c\r\nEND\r\n\x00"`},
	{"500 KB", setOp("v500k", strings.Repeat("abcdefghij", 50_000), 1), "err=<nil>"},
	{"get 500 KB", getOp("v500k"), "500000 bytes"},
	{"1,000,000 bytes", setOp("v1m", strings.Repeat("0123456789", 100_000), 2), "err=<nil>"},
	{"get 1,000,000 bytes", getOp("v1m"), "1000000 bytes"},
	{"over the limit", setOp("v1m", strings.Repeat("x", 1_100_000), 0), "object too large"},
	{"get after over the limit", getOp("v1m"), ""},
	{"key of 250 bytes", setOp(strings.Repeat("k", 250), "long", 0), "err=<nil>"},
	{"get key of 250 bytes", getOp(strings.Repeat("k", 250)), `value="long"`},
	{"key of 251 bytes", setOp(strings.Repeat("k", 251), "long", 0), memcache.ErrMalformedKey.Error()},
	{"get key of 251 bytes", getOp(strings.Repeat("k", 251)), memcache.ErrMalformedKey.Error()},
}

// clientScript is the whole client script, run through the proxy and straight
// against one memcached.
func clientScript() []clientStep {
	steps := []clientStep{
		{"set", setOp("a", "1", 7), "err=<nil>"},
		{"get", getOp("a"), `flags=7 value="1"`},
		{"get miss", getOp("nope"), memcache.ErrCacheMiss.Error()},
		{"add existing", storeOp((*memcache.Client).Add, "a", "2"), memcache.ErrNotStored.Error()},
		{"add new", storeOp((*memcache.Client).Add, "added", "2"), "err=<nil>"},
		{"replace existing", storeOp((*memcache.Client).Replace, "a", "r"), "err=<nil>"},
		{"replace missing", storeOp((*memcache.Client).Replace, "nope", "r"), memcache.ErrNotStored.Error()},
		{"append", storeOp((*memcache.Client).Append, "a", "-tail"), "err=<nil>"},
		{"prepend", storeOp((*memcache.Client).Prepend, "a", "head-"), "err=<nil>"},
		{"append missing", storeOp((*memcache.Client).Append, "nope", "x"), memcache.ErrNotStored.Error()},
		{"prepend missing", storeOp((*memcache.Client).Prepend, "nope", "x"), memcache.ErrNotStored.Error()},
		{"get after append", getOp("a"), `value="head-r-tail"`},
		{"delete hit", func(c *memcache.Client, _ scriptState) string { return errText(c.Delete("added")) }, "err=<nil>"},
		{"delete miss", func(c *memcache.Client, _ scriptState) string { return errText(c.Delete("added")) }, memcache.ErrCacheMiss.Error()},
		{"set counter", setOp("n", "10", 0), "err=<nil>"},
		{"incr", incrOp("n", 5, true), "n=15 err=<nil>"},
		{"decr below zero", incrOp("n", 20, false), "n=0 err=<nil>"},
		{"incr missing", incrOp("nope", 1, true), memcache.ErrCacheMiss.Error()},
		{"decr missing", incrOp("nope", 1, false), memcache.ErrCacheMiss.Error()},
		{"incr non-numeric", incrOp("a", 1, true), "non-numeric"},
		{"set max", setOp("max", "18446744073709551615", 0), "err=<nil>"},
		{"incr wraps", incrOp("max", 1, true), "n=0 err=<nil>"},
		{"touch hit", func(c *memcache.Client, _ scriptState) string { return errText(c.Touch("a", 100)) }, "err=<nil>"},
		{"touch miss", func(c *memcache.Client, _ scriptState) string { return errText(c.Touch("nope", 100)) }, memcache.ErrCacheMiss.Error()},
		{"get and touch hit", func(c *memcache.Client, _ scriptState) string { return itemText(c.GetAndTouch("a", 100)) }, "head-r-tail"},
		{"get and touch miss", func(c *memcache.Client, _ scriptState) string { return itemText(c.GetAndTouch("nope", 100)) }, memcache.ErrCacheMiss.Error()},
	}
	steps = append(steps, casSteps...)
	steps = append(steps, valueSteps...)
	for i, k := range proxytest.NumberedKeys("multi", 100) {
		steps = append(steps, clientStep{"multi set " + k, setOp(k, fmt.Sprintf("value-%d", i), uint32(i)), "err=<nil>"})
	}
	return append(steps,
		clientStep{"get multi with misses", getMultiOp, "100 found"},
		clientStep{"flush all", func(c *memcache.Client, _ scriptState) string { return errText(c.FlushAll()) }, "err=<nil>"},
		clientStep{"get after flush", getOp("a"), memcache.ErrCacheMiss.Error()},
		clientStep{"get multi after flush", getMultiOp, "0 found"},
	)
}

// TestMemcacheClientSameAsMemcached runs the gomemcache script through the
// proxy (four servers) and straight against one memcached: every step gives
// the same result, and the keys really are spread over every server.
func TestMemcacheClientSameAsMemcached(t *testing.T) {
	f := proxytest.NewMemcacheFixture(t, 4)
	through, direct := memcache.New(f.Addr), memcache.New(f.Direct.Addr)
	for _, c := range []*memcache.Client{through, direct} {
		c.Timeout = 10 * time.Second
		t.Cleanup(func() { c.Close() })
	}
	stThrough, stDirect := scriptState{}, scriptState{}
	for _, s := range clientScript() {
		got, want := s.do(through, stThrough), s.do(direct, stDirect)
		if got != want {
			t.Errorf("%s: through the proxy %.300s, memcached %.300s", s.name, got, want)
		}
		if !strings.Contains(want, s.want) {
			t.Errorf("%s: memcached answered %.300s, the script expects %q", s.name, want, s.want)
		}
		if s.name == "get multi with misses" {
			f.CheckSpread(t, proxytest.NumberedKeys("multi", 100))
		}
	}
	for i, b := range f.Backends {
		if n := f.Count(t, i, proxytest.NumberedKeys("multi", 100)); n != 0 {
			t.Errorf("backend %s holds %d keys after flush_all through the proxy", b.Addr, n)
		}
	}
}

// rawSetup stores 20 keys spread over the servers, for the pipelines.
func rawSetup() string {
	var b strings.Builder
	for i, k := range proxytest.NumberedKeys("r", 20) {
		v := fmt.Sprintf("value-%d", i)
		fmt.Fprintf(&b, "set %s %d 0 %d\r\n%s\r\n", k, i, len(v), v)
	}
	return b.String()
}

// rawValue is the VALUE block of key r:i as rawSetup stored it.
func rawValue(i int) string {
	v := fmt.Sprintf("value-%d", i)
	return fmt.Sprintf("VALUE r:%d %d %d\r\n%s\r\n", i, i, len(v), v)
}

// replyLines joins lines, each followed by "\r\n".
func replyLines(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n" }

// rawPipelines are pipelines sent in one write, through the proxy and straight
// to memcached; want, where set, is the exact answer as well.
var rawPipelines = []struct {
	name, req, want string
}{
	{
		name: "multi-key get in key order with duplicates and misses",
		req:  "get r:3 r:0 r:miss r:17 r:3 r:5 r:0 r:19 r:8 r:11 r:miss r:3\r\n",
		want: rawValue(3) + rawValue(0) + rawValue(17) + rawValue(3) + rawValue(5) + rawValue(0) +
			rawValue(19) + rawValue(8) + rawValue(11) + rawValue(3) + "END\r\n",
	},
	{
		name: "get of every key, twice",
		req:  "get " + strings.Join(append(proxytest.NumberedKeys("r", 20), proxytest.NumberedKeys("r", 20)...), " ") + "\r\n",
	},
	{
		name: "gets, gat and gats across servers",
		req: "gets r:1 r:2 r:miss r:3 r:1\r\n" + "gat 100 r:4 r:miss r:5 r:6 r:4\r\n" +
			"gats 0 r:7 r:8 r:9\r\n" + "gat 100 r:miss\r\n" + "gat 100\r\n" + "gats 50 r:10\r\n",
	},
	{
		name: "storage with and without noreply",
		req: "set p:a 1 0 3 noreply\r\nabc\r\n" + "set p:b 2 0 1\r\nb\r\n" + "add p:b 0 0 1 noreply\r\nx\r\n" +
			"add p:b 0 0 1\r\nx\r\n" + "replace p:miss 0 0 1\r\nx\r\n" + "append p:a 0 0 2 noreply\r\n-t\r\n" +
			"prepend p:a 0 0 2\r\nh-\r\n" + "cas p:a 0 0 1 1\r\nz\r\n" + "cas p:miss 0 0 1 1 noreply\r\nz\r\n" +
			"get p:a p:b\r\n",
		want: replyLines("STORED", "NOT_STORED", "NOT_STORED", "STORED", "EXISTS",
			"VALUE p:a 1 7", "h-abc-t", "VALUE p:b 2 1", "b", "END"),
	},
	{
		name: "touch, incr, decr and delete",
		req: "touch r:1 10\r\ntouch t:miss 10\r\ntouch r:2 10 noreply\r\n" + "set t:n 0 0 2\r\n10\r\n" +
			"incr t:n 5\r\ndecr t:n 100\r\nincr t:n 7 noreply\r\nget t:n\r\nincr t:miss 1\r\ndecr t:miss 1\r\n" +
			"incr r:1 1\r\nincr t:n abc\r\n" + "delete t:n\r\ndelete t:n\r\ndelete r:19 noreply\r\ndelete r:18 0\r\n" +
			"get r:18 r:19\r\n",
		want: replyLines("TOUCHED", "NOT_FOUND", "STORED", "15", "0", "VALUE t:n 0 2", "7 ", "END", "NOT_FOUND", "NOT_FOUND",
			"CLIENT_ERROR cannot increment or decrement non-numeric value", "CLIENT_ERROR invalid numeric delta argument",
			"DELETED", "NOT_FOUND", "DELETED", "END"),
	},
	{
		name: "version, verbosity and mn",
		req:  "version\r\nverbosity 1\r\nverbosity 1 noreply\r\nmn\r\nversion\r\n",
		want: replyLines("VERSION x", "OK", "MN", "VERSION x"),
	},
	{
		name: "meta get, set, delete and arithmetic",
		req: "ms m:a 2 F5 T0\r\nhi\r\nmg m:a v f\r\nmg m:a s v k\r\nmg m:miss v\r\nmg m:a v O123 k\r\n" +
			"ms m:b 3 I\r\nxyz\r\nmd m:a\r\nmd m:a\r\nmg m:a v\r\n" +
			"ma m:cnt N0 J13\r\nma m:cnt v\r\nma m:cnt MD D3 v\r\nma m:miss\r\nma m:a\r\n",
	},
	{
		name: "quiet meta requests",
		req: "ms q:a 1 q\r\nx\r\nmg q:a v q\r\nmg q:miss v q\r\nmg q:miss v q k O7\r\nmd q:miss q\r\n" +
			"md q:a q\r\nmg q:a v\r\nma q:miss q\r\nms q:c 1 q\r\ny\r\nmn\r\nma q:c q\r\n" +
			"ms q:big S100 q\r\nx\r\nmg q:c v k\r\n",
	},
	{
		name: "meta with base64 keys",
		req: "ms " + base64Key("b:one") + " 3 b\r\nabc\r\n" + "get b:one\r\n" + "mg " + base64Key("r:4") + " b v k\r\n" +
			"mg " + base64Key("b:miss") + " b v\r\n" + "md " + base64Key("b:one") + " b q\r\n" + "get b:one\r\n" +
			"ma " + base64Key("b:n") + " b N0 J5 v\r\n",
	},
	{
		name: "flush_all",
		req:  "flush_all\r\nget r:0 r:1 r:2\r\nset f:a 0 0 1\r\na\r\nflush_all noreply\r\nget f:a\r\nflush_all 0\r\n",
		want: replyLines("OK", "END", "STORED", "END", "OK"),
	},
}

// TestMemcacheRawPipelines sends pipelines of mixed requests in one write
// through the proxy and straight to memcached and compares the bytes.
func TestMemcacheRawPipelines(t *testing.T) {
	f := proxytest.NewMemcacheFixture(t, 4)
	through, direct := proxytest.Dial(t, f.Addr), proxytest.Dial(t, f.Direct.Addr)
	setup := rawSetup()
	if got, want := through.RoundTrip(setup), strings.Repeat("STORED\r\n", 20); got != want {
		t.Fatalf("setup through the proxy: %q", got)
	}
	direct.RoundTrip(setup)
	f.CheckSpread(t, proxytest.NumberedKeys("r", 20))
	for _, tc := range rawPipelines {
		t.Run(tc.name, func(t *testing.T) {
			got, want := through.RoundTrip(tc.req), direct.RoundTrip(tc.req)
			if got != want {
				t.Errorf("through the proxy:\n%q\nmemcached:\n%q", got, want)
			}
			if tc.want != "" && want != tc.want {
				t.Errorf("memcached answered\n%q\nthe case expects\n%q", want, tc.want)
			}
		})
	}
}
