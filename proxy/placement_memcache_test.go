package proxy_test

import (
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// placementServers starts four memcached servers on 127.0.0.1 and, where
// those addresses can be bound, two on 127.0.0.2:11211 and 127.0.0.3:11211,
// whose nutcracker identity is the host alone.
func placementServers(t *testing.T) []*testservers.Server {
	t.Helper()
	var out []*testservers.Server
	for range 4 {
		out = append(out, testservers.Memcached(t))
	}
	for _, host := range []string{"127.0.0.2", "127.0.0.3"} {
		addr := net.JoinHostPort(host, "11211")
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Logf("cannot bind %s (%v): going on without it", addr, err)
			continue
		}
		ln.Close()
		out = append(out, testservers.MemcachedOn(t, host, 11211))
	}
	return out
}

// memcachePlacementKeys returns n distinct memcache keys of several shapes,
// including bytes >= 0x80 (nutcracker's fnv hashes read them as signed).
func memcachePlacementKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		switch i % 4 {
		case 0:
			keys[i] = fmt.Sprintf("key:%d", i)
		case 1:
			keys[i] = fmt.Sprintf("user:{%d}:profile:%d", i/10, i)
		case 2:
			keys[i] = fmt.Sprintf("bin\xff\x80%c:%d", byte(0x80+i%100), i)
		default:
			keys[i] = fmt.Sprint(i)
		}
	}
	return keys
}

// TestMemcachePlacementMatchesNutcracker sets keys through nutcracker and
// reads each one through the proxy, over the same servers with the same
// pool configuration: every key must be where the proxy looks for it.
func TestMemcachePlacementMatchesNutcracker(t *testing.T) {
	servers := placementServers(t)
	weights := make([]int, len(servers))
	for i := range weights {
		weights[i] = 1 + i%3
	}
	keys := memcachePlacementKeys(1000)
	for _, tc := range []struct {
		name, hash, distribution string
		weights                  []int
	}{
		{"ketama fnv1a_64", "fnv1a_64", "ketama", nil},
		{"ketama md5 with weights", "md5", "ketama", weights},
		{"modula crc32a with weights", "crc32a", "modula", weights},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, s := range servers {
				if got := proxytest.Dial(t, s.Addr).RoundTrip("flush_all\r\n"); got != "OK\r\n" {
					t.Fatalf("flush_all on %s: %q", s.Addr, got)
				}
			}
			p := proxytest.Pool{Memcache: true, Hash: tc.hash, Distribution: tc.distribution, Servers: proxytest.ServerLines(servers, tc.weights, nil)}
			nutAddr := proxytest.FreeListen(t)
			testservers.Nutcracker(t, p.YAML("nut", nutAddr), nutAddr)
			addr := proxytest.StartProxy(t, p.YAML("mc", proxytest.FreeListen(t))).Addr(0).String()
			placeAndFind(t, nutAddr, addr, keys)
			checkUsed(t, servers, keys)
		})
	}
}

// placeAndFind sets every key through nutcracker and gets it through the
// proxy.
func placeAndFind(t *testing.T, nutAddr, proxyAddr string, keys []string) {
	t.Helper()
	var set, get, want strings.Builder
	for i, k := range keys {
		v := fmt.Sprint(i)
		fmt.Fprintf(&set, "set %s 0 0 %d\r\n%s\r\n", k, len(v), v)
		fmt.Fprintf(&get, "get %s\r\n", k)
		fmt.Fprintf(&want, "VALUE %s 0 %d\r\n%s\r\nEND\r\n", k, len(v), v)
	}
	if got := proxytest.Dial(t, nutAddr).RoundTripNoMn(set.String(), len(keys)); got != strings.Repeat("STORED\r\n", len(keys)) {
		t.Fatalf("sets through nutcracker: %.300q", got)
	}
	got := proxytest.Dial(t, proxyAddr).RoundTrip(get.String())
	if got == want.String() {
		return
	}
	missing := 0
	for _, k := range keys {
		if !strings.Contains(got, "VALUE "+k+" ") {
			missing++
		}
	}
	t.Errorf("%d of %d keys set through nutcracker are not found through the proxy", missing, len(keys))
}

// checkUsed checks that the keys landed on more than one server, so the
// comparison above means something.
func checkUsed(t *testing.T, servers []*testservers.Server, keys []string) {
	t.Helper()
	used := 0
	for _, s := range servers {
		got := proxytest.Dial(t, s.Addr).RoundTrip("get " + strings.Join(keys, " ") + "\r\n")
		if n := strings.Count(got, "VALUE "); n > 0 {
			used++
			t.Logf("%s holds %d keys", s.Addr, n)
		}
	}
	if used < 2 {
		t.Errorf("the keys landed on %d of %d servers", used, len(servers))
	}
}

// base64Key is key in base64, as meta commands with the b flag take it.
func base64Key(key string) string { return base64.StdEncoding.EncodeToString([]byte(key)) }

// TestMemcacheBase64KeyPlacement checks that a meta request with a base64
// key (flag b) lands on the server of the decoded key.
func TestMemcacheBase64KeyPlacement(t *testing.T) {
	f := proxytest.NewMemcacheFixture(t, 4)
	c := proxytest.Dial(t, f.Addr)
	keys := proxytest.NumberedKeys("b64", 40)
	var req, want strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&req, "ms %s 2 b\r\nok\r\n", base64Key(k))
		want.WriteString("HD\r\n")
	}
	if got := c.RoundTrip(req.String()); got != want.String() {
		t.Fatalf("ms with base64 keys: %q", got)
	}
	f.CheckSpread(t, keys)
	req.Reset()
	want.Reset()
	for _, k := range keys {
		fmt.Fprintf(&req, "get %s\r\n", k)
		fmt.Fprintf(&want, "VALUE %s 0 2\r\nok\r\nEND\r\n", k)
	}
	if got := c.RoundTrip(req.String()); got != want.String() {
		t.Fatalf("plain gets of keys stored with base64:\n%q\nwant\n%q", got, want.String())
	}
}
