package proxy_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// loadKeyspace writes n keys through the proxy: strings "ks:str:<i>", and
// every hundredth a hash "ks:h:<i>" instead.
func loadKeyspace(t *testing.T, addr string, n int) (strs, hashes []string) {
	t.Helper()
	var cmds [][]string
	mset := []string{"MSET"}
	for i := 0; i < n; i++ {
		if i%100 == 0 {
			k := "ks:h:" + strconv.Itoa(i)
			hashes = append(hashes, k)
			cmds = append(cmds, []string{"HSET", k, "f", "v"})
			continue
		}
		k := "ks:str:" + strconv.Itoa(i)
		strs = append(strs, k)
		if mset = append(mset, k, "v"); len(mset) > 200 {
			cmds, mset = append(cmds, mset), []string{"MSET"}
		}
	}
	if len(mset) > 1 {
		cmds = append(cmds, mset)
	}
	for i, r := range proxytest.Pipeline(t, addr, cmds) {
		if strings.HasPrefix(r, "-") {
			t.Fatalf("%s ...: %q", cmds[i][0], r)
		}
	}
	return strs, hashes
}

// scanParts splits a SCAN reply into its cursor and the rest of its bytes
// (the array of keys).
func scanParts(t *testing.T, raw string) (cursor, rest string) {
	t.Helper()
	n, hn, err := resp.ReadArrayHeader([]byte(raw))
	if err != nil || n != 2 {
		t.Fatalf("not a SCAN reply: %q", proxytest.Short(raw))
	}
	cur, cn, err := resp.ReadBulkString([]byte(raw[hn:]))
	if err != nil {
		t.Fatalf("not a SCAN reply: %q", proxytest.Short(raw))
	}
	return string(cur), raw[hn+cn:]
}

// scanKeys returns the keys of a SCAN reply.
func scanKeys(t *testing.T, raw string) []string {
	t.Helper()
	v, _, err := resp.ParseValue([]byte(raw))
	if err != nil {
		t.Fatalf("SCAN reply %q: %v", proxytest.Short(raw), err)
	}
	_, keys, err := resp.ParseScan(v)
	if err != nil {
		t.Fatalf("SCAN reply %q: %v", proxytest.Short(raw), err)
	}
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = string(k)
	}
	return out
}

// scanWalk iterates SCAN with opts through px to cursor 0 (at most pages
// pages; 0: no limit), checking every page against a SCAN of the same
// server with the server's own cursor on direct[i] (the proxy's cursor is
// the server's × 1000 + its index): the same keys, byte for byte, and the
// cursor that follows. It returns every key seen and the pages walked.
func scanWalk(t *testing.T, px *proxytest.Conn, direct []*proxytest.Conn, pages int, opts ...string) (map[string]int, int) {
	t.Helper()
	seen := map[string]int{}
	cursor := "0"
	n := 0
	for ; n == 0 || cursor != "0"; n++ {
		if pages > 0 && n == pages {
			break
		}
		c, _ := strconv.ParseUint(cursor, 10, 64)
		idx, own := int(c%1000), c/1000
		// A rehash step of the server between the two SCANs may change
		// a page or its cursor: the same two again, once it is over.
		var got, want, wantNext string
		for try := 0; ; try++ {
			got = px.DoAny(append([]string{"SCAN", cursor}, opts...)...)
			want = direct[idx].DoAny(append([]string{"SCAN", strconv.FormatUint(own, 10)}, opts...)...)
			next, rest := scanParts(t, got)
			dnext, drest := scanParts(t, want)
			wantNext = "0"
			switch dc, _ := strconv.ParseUint(dnext, 10, 64); {
			case dc != 0:
				wantNext = strconv.FormatUint(dc*1000+uint64(idx), 10)
			case idx+1 < len(direct):
				wantNext = strconv.Itoa(idx + 1)
			}
			if rest == drest && next == wantNext {
				break
			}
			if try == 20 {
				t.Fatalf("SCAN %s %q: %q, the server's SCAN %d answers %q (want cursor %s)", cursor, opts,
					proxytest.Short(got), own, proxytest.Short(want), wantNext)
			}
			time.Sleep(50 * time.Millisecond)
		}
		next := wantNext
		for _, k := range scanKeys(t, got) {
			seen[k]++
		}
		cursor = next
	}
	return seen, n
}

// checkSeen fails the test for every key of want not in seen, and every
// key of seen that is not in want.
func checkSeen(t *testing.T, what string, seen map[string]int, want []string) {
	t.Helper()
	missing, extra := 0, 0
	for _, k := range want {
		if seen[k] == 0 {
			if missing++; missing <= 5 {
				t.Errorf("%s: %s never seen", what, k)
			}
		}
	}
	wanted := make(map[string]bool, len(want))
	for _, k := range want {
		wanted[k] = true
	}
	for k := range seen {
		if !wanted[k] {
			if extra++; extra <= 5 {
				t.Errorf("%s: %s seen, which it should not be", what, k)
			}
		}
	}
	if missing+extra > 0 {
		t.Errorf("%s: %d of %d keys missing, %d extra", what, missing, len(want), extra)
	}
}

// holder returns the index of the backend that holds key, asked directly,
// or -1 when no live backend does.
func holder(t *testing.T, backends []*testservers.Server, key string) int {
	t.Helper()
	for i, b := range backends {
		if r, err := testservers.Do(b.Addr, "EXISTS", key); err == nil && r == ":1" {
			return i
		}
	}
	return -1
}

// TestScanWalksEveryServer loads 100,000 keys through a pool of three
// servers and walks them with SCAN through the proxy, in RESP2 and RESP3:
// every key is seen, MATCH, COUNT and TYPE are honoured, and every page is
// the page the server itself gives for its own cursor, byte for byte.
func TestScanWalksEveryServer(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 3, proxytest.Pool{})
	const n = 100_000
	start := time.Now()
	strs, hashes := loadKeyspace(t, f.Addr, n)
	all := append(slices.Clone(strs), hashes...)
	t.Logf("%d keys loaded in %v", n, time.Since(start).Round(time.Millisecond))
	for proto := 2; proto <= 3; proto++ {
		px := proxytest.Dial(t, f.Addr)
		direct := make([]*proxytest.Conn, len(f.Backends))
		for i, b := range f.Backends {
			direct[i] = proxytest.Dial(t, b.Addr)
		}
		if proto == 3 {
			for _, c := range append([]*proxytest.Conn{px}, direct...) {
				if got := c.DoAny("HELLO", "3"); !strings.HasPrefix(got, "%") {
					t.Fatalf("HELLO 3: %q", proxytest.Short(got))
				}
			}
		}
		start = time.Now()
		seen, pages := scanWalk(t, px, direct, 0, "COUNT", "1000")
		t.Logf("RESP%d: SCAN COUNT 1000 walked %d pages, saw %d distinct keys (of %d) in %v", proto, pages, len(seen), len(all),
			time.Since(start).Round(time.Millisecond))
		checkSeen(t, fmt.Sprintf("RESP%d SCAN COUNT 1000", proto), seen, all)

		var match []string
		for _, k := range strs {
			if strings.HasPrefix(k, "ks:str:7") {
				match = append(match, k)
			}
		}
		seen, pages = scanWalk(t, px, direct, 0, "MATCH", "ks:str:7*", "COUNT", "5000")
		t.Logf("RESP%d: SCAN MATCH ks:str:7* walked %d pages, saw %d keys (want %d)", proto, pages, len(seen), len(match))
		checkSeen(t, fmt.Sprintf("RESP%d SCAN MATCH", proto), seen, match)

		seen, pages = scanWalk(t, px, direct, 0, "TYPE", "hash", "COUNT", "5000")
		t.Logf("RESP%d: SCAN TYPE hash walked %d pages, saw %d keys (want %d)", proto, pages, len(seen), len(hashes))
		checkSeen(t, fmt.Sprintf("RESP%d SCAN TYPE hash", proto), seen, hashes)

		// Small pages: the server's COUNT, page by page.
		seen, pages = scanWalk(t, px, direct, 200, "COUNT", "10")
		if len(seen) < 10*pages/2 || len(seen) > 20*pages {
			t.Errorf("RESP%d: SCAN COUNT 10: %d keys in %d pages", proto, len(seen), pages)
		}
	}
}

// TestScanCursors checks the cursors a client can send: the server's
// errors for a malformed one and for bad options, the proxy's "invalid
// cursor" for one that names no server, and the pool's cursor 0 after the
// last server.
func TestScanCursors(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 3, proxytest.Pool{})
	direct := proxytest.Dial(t, f.Backends[0].Addr)
	px := proxytest.Dial(t, f.Addr)
	for _, req := range [][]string{
		{"SCAN", "x"}, {"SCAN", "18446744073709551616"}, {"SCAN", " 1"}, {"SCAN", "1x"}, {"SCAN", "-"},
		{"SCAN", "0", "COUNT", "0"}, {"SCAN", "0", "FOO"}, {"SCAN", "0", "TYPE"}, {"SCAN"}, {"SCAN", "-1x"},
	} {
		if got, want := px.DoAny(req...), direct.DoAny(req...); got != want {
			t.Errorf("%q: the proxy answers %q, Redis %q", req, got, want)
		}
	}
	for _, cursor := range []string{"3", "1003", "18446744073709551615"} {
		if got := px.DoAny("SCAN", cursor); got != "-ERR invalid cursor\r\n" {
			t.Errorf("SCAN %s (no such server): %q", cursor, got)
		}
	}
	if got := px.DoAny("SCAN", "2"); got != "*2\r\n$1\r\n0\r\n*0\r\n" {
		t.Errorf("SCAN 2 (the last server, empty): %q, want cursor 0 and no keys", got)
	}
	// Cursor 0 as the server parses it: "", "+0", "-0".
	for _, cursor := range []string{"1", "+1", "-0", "", "+0"} {
		want := "*2\r\n$1\r\n2\r\n*0\r\n" // server 1's walk ends: server 2's cursor
		if cursor == "" || strings.HasSuffix(cursor, "0") {
			want = "*2\r\n$1\r\n1\r\n*0\r\n"
		}
		if got := px.DoAny("SCAN", cursor, "MATCH", "*"); got != want {
			t.Errorf("SCAN %q (an empty server): %q, want %q", cursor, got, want)
		}
	}
}

// TestKeysDbsizeRandomkey checks KEYS against the union of the servers'
// KEYS, DBSIZE against their sum, and RANDOMKEY: an existing key, from
// every server in turn, and a null (in the client's protocol, as Redis's)
// on an empty pool.
func TestKeysDbsizeRandomkey(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 3, proxytest.Pool{})
	ref := testservers.Redis(t)
	for proto := 2; proto <= 3; proto++ {
		px, direct := proxytest.Dial(t, f.Addr), proxytest.Dial(t, ref.Addr)
		if proto == 3 {
			px.DoAny("HELLO", "3")
			direct.DoAny("HELLO", "3")
		}
		for _, req := range [][]string{{"RANDOMKEY"}, {"KEYS", "*"}, {"DBSIZE"}, {"KEYS"}, {"DBSIZE", "x"}, {"RANDOMKEY", "x"}} {
			if got, want := px.DoAny(req...), direct.DoAny(req...); got != want {
				t.Errorf("RESP%d %q on an empty pool: the proxy answers %q, Redis %q", proto, req, got, want)
			}
		}
	}
	strs, hashes := loadKeyspace(t, f.Addr, 3000)
	all := append(strs, hashes...)
	var union []string
	sum := 0
	for _, b := range f.Backends {
		keys := scanKeys(t, "*2\r\n$1\r\n0\r\n"+proxytest.Dial(t, b.Addr).DoAny("KEYS", "*"))
		if len(keys) == 0 {
			t.Fatalf("server %s holds no key", b.Addr)
		}
		union = append(union, keys...)
		sum += proxytest.Dbsize(t, b.Addr)
	}
	px3 := proxytest.Dial(t, f.Addr)
	px3.DoAny("HELLO", "3")
	for _, px := range []*proxytest.Conn{proxytest.Dial(t, f.Addr), px3} {
		got := scanKeys(t, "*2\r\n$1\r\n0\r\n"+px.DoAny("KEYS", "*"))
		if slices.Sort(got); !slices.Equal(got, slices.Sorted(slices.Values(union))) || len(got) != len(all) {
			t.Errorf("KEYS *: %d keys, the servers hold %d (%d written)", len(got), len(union), len(all))
		}
		got = scanKeys(t, "*2\r\n$1\r\n0\r\n"+px.DoAny("KEYS", "ks:h:*"))
		if slices.Sort(got); !slices.Equal(got, slices.Sorted(slices.Values(hashes))) {
			t.Errorf("KEYS ks:h:*: %d keys, want the %d hashes", len(got), len(hashes))
		}
		if got := px.DoAny("DBSIZE"); got != fmt.Sprintf(":%d\r\n", sum) || sum != len(all) {
			t.Errorf("DBSIZE: %q, the servers hold %d (%d written)", got, sum, len(all))
		}
	}
	// RANDOMKEY: existing keys, from every server.
	px := proxytest.Dial(t, f.Addr)
	from := map[int]int{}
	for i := 0; i < 100; i++ {
		k := proxytest.Text(px.Do("RANDOMKEY"))
		if !slices.Contains(all, k) {
			t.Fatalf("RANDOMKEY: %q, no key of the pool", k)
		}
		from[holder(t, f.Backends, k)]++
	}
	t.Logf("RANDOMKEY: 100 keys from the servers %v", from)
	if len(from) != 3 {
		t.Errorf("RANDOMKEY: 100 keys from %d of 3 servers: %v", len(from), from)
	}
	// One server with keys: always its.
	for i := 0; i < 2; i++ {
		proxytest.BackendDo(t, f.Backends[i].Addr, []string{"FLUSHALL"})
	}
	for i := 0; i < 20; i++ {
		if k := proxytest.Text(px.Do("RANDOMKEY")); holder(t, f.Backends, k) != 2 {
			t.Fatalf("RANDOMKEY with keys on server 2 only: %q", k)
		}
	}
}

// TestFlushNeedsAllowFlush checks that FLUSHALL and FLUSHDB are refused,
// touching no server, unless the pool has allow_flush, and that with it
// they empty every server with Redis's replies.
func TestFlushNeedsAllowFlush(t *testing.T) {
	backends := proxytest.StartRedisBackends(t, 3)
	f := proxytest.StartFixture(t, proxytest.Pool{}, backends)
	loadKeyspace(t, f.Addr, 3000)
	px := proxytest.Dial(t, f.Addr)
	for _, req := range [][]string{{"FLUSHALL"}, {"FLUSHDB"}, {"FLUSHALL", "ASYNC"}, {"FLUSHDB", "SYNC"}} {
		if got := px.Do(req...); !strings.HasPrefix(got, "-ERR '"+strings.ToLower(req[0])+"' would empty every server of pool alpha") ||
			!strings.Contains(got, "allow_flush: true") {
			t.Errorf("%q without allow_flush: %q", req, got)
		}
	}
	total := 0
	for _, b := range backends {
		total += proxytest.Dbsize(t, b.Addr)
	}
	if total != 3000 {
		t.Errorf("after the refused flushes the servers hold %d keys, want 3000", total)
	}
	t.Logf("refused: the servers hold %d keys", total)

	backends = proxytest.StartRedisBackends(t, 3)
	f = proxytest.StartFixture(t, proxytest.Pool{Keys: []string{"allow_flush: true"}}, backends)
	ref := testservers.Redis(t)
	direct := proxytest.Dial(t, ref.Addr)
	px = proxytest.Dial(t, f.Addr)
	for _, req := range [][]string{{"FLUSHALL"}, {"FLUSHDB"}, {"FLUSHALL", "ASYNC"}, {"FLUSHDB", "SYNC"}, {"FLUSHALL", "FOO"},
		{"FLUSHDB", "ASYNC", "SYNC"}} {
		loadKeyspace(t, f.Addr, 300)
		got, want := px.Do(req...), direct.Do(req...)
		if got != want {
			t.Errorf("%q with allow_flush: %q, Redis answers %q", req, got, want)
		}
		left := 0
		for _, b := range backends {
			left += proxytest.Dbsize(t, b.Addr)
		}
		if (want == "+OK\r\n") != (left == 0) {
			t.Errorf("%q answered %q: the servers hold %d keys", req, got, left)
		}
		proxytest.BackendDo(t, backends[0].Addr, []string{"FLUSHALL"})
		proxytest.BackendDo(t, backends[1].Addr, []string{"FLUSHALL"})
		proxytest.BackendDo(t, backends[2].Addr, []string{"FLUSHALL"})
	}
}

// TestKeyspaceServerDown checks what the keyspace commands do when a
// server of the pool cannot be reached: SCAN, KEYS and DBSIZE answer the
// error (never a part of the keyspace as if it were all), a SCAN over the
// live servers still works, and RANDOMKEY answers a key of a live server.
func TestKeyspaceServerDown(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 3, proxytest.Pool{Keys: []string{"timeout: 2000"}})
	loadKeyspace(t, f.Addr, 3000)
	proxytest.KillServer(t, f.Backends[1])
	px := proxytest.Dial(t, f.Addr)
	for _, req := range [][]string{{"SCAN", "1"}, {"KEYS", "*"}, {"DBSIZE"}} {
		if got := px.Do(req...); !strings.HasPrefix(got, "-ERR ") {
			t.Errorf("%q with server 1 down: %q, want an error", req, proxytest.Short(got))
		}
	}
	if got := px.Do("SCAN", "0", "COUNT", "10"); !strings.HasPrefix(got, "*2\r\n") {
		t.Errorf("SCAN 0 (server 0 live): %q", proxytest.Short(got))
	}
	errs := 0
	for i := 0; i < 30; i++ {
		k := px.Do("RANDOMKEY")
		if strings.HasPrefix(k, "-") {
			errs++
			continue
		}
		if s := holder(t, f.Backends, proxytest.Text(k)); s < 0 {
			t.Fatalf("RANDOMKEY: %q, of the down server", k)
		}
	}
	if errs > 0 {
		t.Errorf("RANDOMKEY with one server of three down: %d errors in 30", errs)
	}
}
