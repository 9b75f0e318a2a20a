package proxy_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// mcRawSetup stores 20 keys spread over the servers, for the pipelines.
func mcRawSetup() string {
	var b strings.Builder
	for i, k := range numberedKeys("r", 20) {
		v := fmt.Sprintf("value-%d", i)
		fmt.Fprintf(&b, "set %s %d 0 %d\r\n%s\r\n", k, i, len(v), v)
	}
	return b.String()
}

// mcValue is the VALUE block of key r:i as mcRawSetup stored it.
func mcValue(i int) string {
	v := fmt.Sprintf("value-%d", i)
	return fmt.Sprintf("VALUE r:%d %d %d\r\n%s\r\n", i, i, len(v), v)
}

// mcJoin joins lines, each followed by "\r\n".
func mcJoin(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n" }

// mcRawCases are pipelines sent in one write, through the proxy and straight
// to memcached; want, where set, is the exact answer as well.
var mcRawCases = []struct {
	name, req, want string
}{
	{
		name: "multi-key get in key order with duplicates and misses",
		req:  "get r:3 r:0 r:miss r:17 r:3 r:5 r:0 r:19 r:8 r:11 r:miss r:3\r\n",
		want: mcValue(3) + mcValue(0) + mcValue(17) + mcValue(3) + mcValue(5) + mcValue(0) +
			mcValue(19) + mcValue(8) + mcValue(11) + mcValue(3) + "END\r\n",
	},
	{
		name: "get of every key, twice",
		req:  "get " + strings.Join(append(numberedKeys("r", 20), numberedKeys("r", 20)...), " ") + "\r\n",
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
		want: mcJoin("STORED", "NOT_STORED", "NOT_STORED", "STORED", "EXISTS",
			"VALUE p:a 1 7", "h-abc-t", "VALUE p:b 2 1", "b", "END"),
	},
	{
		name: "touch, incr, decr and delete",
		req: "touch r:1 10\r\ntouch t:miss 10\r\ntouch r:2 10 noreply\r\n" + "set t:n 0 0 2\r\n10\r\n" +
			"incr t:n 5\r\ndecr t:n 100\r\nincr t:n 7 noreply\r\nget t:n\r\nincr t:miss 1\r\ndecr t:miss 1\r\n" +
			"incr r:1 1\r\nincr t:n abc\r\n" + "delete t:n\r\ndelete t:n\r\ndelete r:19 noreply\r\ndelete r:18 0\r\n" +
			"get r:18 r:19\r\n",
		want: mcJoin("TOUCHED", "NOT_FOUND", "STORED", "15", "0", "VALUE t:n 0 2", "7 ", "END", "NOT_FOUND", "NOT_FOUND",
			"CLIENT_ERROR cannot increment or decrement non-numeric value", "CLIENT_ERROR invalid numeric delta argument",
			"DELETED", "NOT_FOUND", "DELETED", "END"),
	},
	{
		name: "version, verbosity and mn",
		req:  "version\r\nverbosity 1\r\nverbosity 1 noreply\r\nmn\r\nversion\r\n",
		want: mcJoin("VERSION x", "OK", "MN", "VERSION x"),
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
		req: "ms " + mcB64("b:one") + " 3 b\r\nabc\r\n" + "get b:one\r\n" + "mg " + mcB64("r:4") + " b v k\r\n" +
			"mg " + mcB64("b:miss") + " b v\r\n" + "md " + mcB64("b:one") + " b q\r\n" + "get b:one\r\n" +
			"ma " + mcB64("b:n") + " b N0 J5 v\r\n",
	},
	{
		name: "flush_all",
		req:  "flush_all\r\nget r:0 r:1 r:2\r\nset f:a 0 0 1\r\na\r\nflush_all noreply\r\nget f:a\r\nflush_all 0\r\n",
		want: mcJoin("OK", "END", "STORED", "END", "OK"),
	},
}

// mcB64 is key in base64, as meta commands with the b flag take it.
func mcB64(key string) string { return base64.StdEncoding.EncodeToString([]byte(key)) }

// TestMemcacheRawPipelines sends pipelines of mixed requests in one write
// through the proxy and straight to memcached and compares the bytes.
func TestMemcacheRawPipelines(t *testing.T) {
	f := newMemcacheFixture(t, 4)
	through, direct := dialClient(t, f.addr), dialClient(t, f.direct.Addr)
	setup := mcRawSetup()
	if got, want := through.roundTrip(setup), strings.Repeat("STORED\r\n", 20); got != want {
		t.Fatalf("setup through the proxy: %q", got)
	}
	direct.roundTrip(setup)
	f.checkSpread(t, numberedKeys("r", 20))
	for _, tc := range mcRawCases {
		t.Run(tc.name, func(t *testing.T) {
			got, want := through.roundTrip(tc.req), direct.roundTrip(tc.req)
			if got != want {
				t.Errorf("through the proxy:\n%q\nmemcached:\n%q", got, want)
			}
			if tc.want != "" && want != tc.want {
				t.Errorf("memcached answered\n%q\nthe case expects\n%q", want, tc.want)
			}
		})
	}
}

// TestMemcacheBase64KeyPlacement checks that a meta request with a base64
// key (flag b) lands on the server of the decoded key.
func TestMemcacheBase64KeyPlacement(t *testing.T) {
	f := newMemcacheFixture(t, 4)
	c := dialClient(t, f.addr)
	keys := numberedKeys("b64", 40)
	var req, want strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&req, "ms %s 2 b\r\nok\r\n", mcB64(k))
		want.WriteString("HD\r\n")
	}
	if got := c.roundTrip(req.String()); got != want.String() {
		t.Fatalf("ms with base64 keys: %q", got)
	}
	f.checkSpread(t, keys)
	req.Reset()
	want.Reset()
	for _, k := range keys {
		fmt.Fprintf(&req, "get %s\r\n", k)
		fmt.Fprintf(&want, "VALUE %s 0 2\r\nok\r\nEND\r\n", k)
	}
	if got := c.roundTrip(req.String()); got != want.String() {
		t.Fatalf("plain gets of keys stored with base64:\n%q\nwant\n%q", got, want.String())
	}
}
