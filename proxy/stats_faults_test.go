package proxy_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/proxy"
)

// The counters compared after a fault: the pool's, and its one server's
// (prefixed "s0.").
var (
	faultPoolCounters   = []string{"client_eof", "client_err", "client_connections", "server_ejects", "forward_error", "fragments"}
	faultServerCounters = []string{"server_eof", "server_err", "server_timedout", "server_connections", "requests", "request_bytes", "responses", "response_bytes"}
)

// statsFault is one fault, made the same way through nutcracker and through
// shardproxy, each with a backend of its own.
type statsFault struct {
	name       string
	memcache   bool
	timeoutMS  int  // the pool's timeout; 0 leaves it out
	closedPort bool // the server line names a port nothing listens on
	// run makes the fault through the proxy listening at addr; backend is
	// nil with closedPort.
	run func(t *testing.T, addr string, backend *testservers.Server)
	// ours returns the counters shardproxy deliberately counts otherwise
	// than nutcracker (documented in the README's stats paragraph), with
	// shardproxy's values; nil when it counts the same.
	ours func(eject bool) map[string]int64
	// pending returns the counters where shardproxy still differs from
	// nutcracker and should not, with shardproxy's values today: the fix
	// lies outside the code this test was written with. Delete the entry
	// with the fix.
	pending func(eject bool) map[string]int64
}

// statsFaultYAML is the one configuration both proxies run: pool "sf" with one
// server named "s0".
func statsFaultYAML(f statsFault, eject bool, listen, server string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "sf:\n  listen: %s\n  redis: %v\n  hash: fnv1a_64\n  distribution: ketama\n", listen, !f.memcache)
	if f.timeoutMS > 0 {
		fmt.Fprintf(&b, "  timeout: %d\n", f.timeoutMS)
	}
	fmt.Fprintf(&b, "  auto_eject_hosts: %v\n  server_failure_limit: 2\n  server_retry_timeout: 30000\n", eject)
	fmt.Fprintf(&b, "  servers:\n    - %s:1 s0\n", server)
	return b.String()
}

// runStatsFault makes fault f through nutcracker (nutcracker true) or
// shardproxy, and returns how far each compared counter moved (gauges too).
func runStatsFault(t *testing.T, f statsFault, eject, nutcracker bool) map[string]int64 {
	t.Helper()
	var backend *testservers.Server
	server := net.JoinHostPort("127.0.0.1", fmt.Sprint(testservers.FreePort(t, "127.0.0.1")))
	if !f.closedPort {
		if f.memcache {
			backend = testservers.Memcached(t)
		} else {
			backend = testservers.Redis(t)
		}
		server = backend.Addr
	}
	listen := proxytest.FreeListen(t)
	yaml := statsFaultYAML(f, eject, listen, server)
	var stats string
	if nutcracker {
		// nutcracker serves the counters it aggregated last: every
		// 100 ms here instead of every 30 s.
		nc := testservers.NutcrackerWith(t, yaml, testservers.NutcrackerOptions{StatsInterval: 100 * time.Millisecond}, listen)
		stats = nc.Addr
	} else {
		px := proxytest.StartProxyOpts(t, yaml, proxy.Options{StatsAddr: "127.0.0.1:0"})
		stats = px.StatsAddr().String()
	}
	// Settled: nutcracker's start was waited for by connecting to its
	// listener, a client_eof it may not have aggregated yet.
	before := settledCounters(t, stats)
	f.run(t, listen, backend)
	after := settledCounters(t, stats)
	for k := range after {
		after[k] -= before[k]
	}
	return after
}

// settledCounters returns the compared counters once two reads 300 ms apart
// agree (three of nutcracker's aggregations here), or after 5 s.
func settledCounters(t *testing.T, stats string) map[string]int64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	prev := faultCounters(t, stats)
	for {
		time.Sleep(300 * time.Millisecond)
		cur := faultCounters(t, stats)
		if maps.Equal(prev, cur) || time.Now().After(deadline) {
			return cur
		}
		prev = cur
	}
}

// faultCounters reads the compared counters of pool sf and server s0.
func faultCounters(t *testing.T, stats string) map[string]int64 {
	t.Helper()
	doc := proxytest.FetchStats(t, stats)
	pool, _ := doc["sf"].(map[string]any)
	server, _ := pool["s0"].(map[string]any)
	out := map[string]int64{}
	for _, k := range faultPoolCounters {
		v, ok := pool[k].(float64)
		if !ok {
			t.Fatalf("stats at %s: no pool counter %s in %v", stats, k, doc)
		}
		out[k] = int64(v)
	}
	for _, k := range faultServerCounters {
		v, ok := server[k].(float64)
		if !ok {
			t.Fatalf("stats at %s: no server counter %s in %v", stats, k, doc)
		}
		out["s0."+k] = int64(v)
	}
	return out
}

// formatCounters lists counters in a fixed order, zeros left out.
func formatCounters(c map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(c)) {
		if c[k] != 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, c[k]))
		}
	}
	return strings.Join(parts, " ")
}

// firstLine sends req and returns the first line of its reply.
func firstLine(t *testing.T, nc net.Conn, r *bufio.Reader, req string) string {
	t.Helper()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatalf("write %q: %v", req, err)
	}
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("reply to %q: %v (read %q)", req, err, line)
	}
	return line
}

// firstLineOrClose sends req and returns the first line of its reply, or ""
// when the proxy closes the connection instead (as nutcracker does to a
// request it cannot parse).
func firstLineOrClose(t *testing.T, nc net.Conn, req string) string {
	t.Helper()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatalf("write %q: %v", req, err)
	}
	line, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) && !proxytest.IsReset(err) {
		t.Fatalf("reply to %q: %v (read %q)", req, err, line)
	}
	return line
}

// readUntilClosed reads until the proxy closes the connection.
func readUntilClosed(t *testing.T, nc net.Conn) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, nc); err != nil && !proxytest.IsReset(err) {
		t.Fatalf("want the connection closed: %v", err)
	}
}

// faultRequests is how many requests a fault sends where it sends many.
const faultRequests = 20

// keptClient is how shardproxy counts a client it answers with an error
// and keeps where nutcracker closes it (a request it cannot parse): no
// client_err, and the client still connected.
func keptClient(bool) map[string]int64 {
	return map[string]int64{"client_err": 0, "client_connections": 1}
}

// statsFaults are the faults compared; each leaves its client connected
// unless it is about the client closing.
var statsFaults = []statsFault{
	{
		name: "redis answered (control)",
		run: func(t *testing.T, addr string, _ *testservers.Server) {
			rc := proxytest.Dial(t, addr)
			for range 3 {
				if got := rc.Do("SET", "sf:k", "v"); got != "+OK\r\n" {
					t.Fatalf("SET: %q", got)
				}
			}
		},
	},
	{
		name:       "redis connection refused",
		closedPort: true,
		run: func(t *testing.T, addr string, _ *testservers.Server) {
			rc := proxytest.Dial(t, addr)
			for range faultRequests {
				if got := rc.Do("GET", "sf:k"); !strings.HasPrefix(got, "-") {
					t.Fatalf("GET from a closed port: %q, want an error", got)
				}
			}
		},
	},
	{
		name: "redis server killed",
		run: func(t *testing.T, addr string, backend *testservers.Server) {
			rc := proxytest.Dial(t, addr)
			if got := rc.Do("SET", "sf:k", "v"); got != "+OK\r\n" {
				t.Fatalf("SET: %q", got)
			}
			backend.Kill()
			time.Sleep(200 * time.Millisecond) // the proxy sees the EOF
			for range faultRequests {
				if got := rc.Do("GET", "sf:k"); !strings.HasPrefix(got, "-") {
					t.Fatalf("GET from a killed server: %q, want an error", got)
				}
			}
		},
	},
	{
		name:      "redis timeout",
		timeoutMS: 200,
		run: func(t *testing.T, addr string, backend *testservers.Server) {
			backend.Stop()
			rc := proxytest.Dial(t, addr)
			for range 5 {
				if got := rc.Do("GET", "sf:k"); !strings.HasPrefix(got, "-") {
					t.Fatalf("GET from a stopped server: %q, want an error", got)
				}
			}
		},
	},
	{
		name: "redis server EOF with a request in flight",
		run: func(t *testing.T, addr string, backend *testservers.Server) {
			rc := proxytest.Dial(t, addr)
			if got := rc.Do("SET", "sf:k", "v"); got != "+OK\r\n" {
				t.Fatalf("SET: %q", got)
			}
			// The script never returns: the server has read the request
			// and answers nothing until it dies, which closes the
			// connection with no unread bytes (a FIN, not a reset).
			rc.Write(proxytest.EncodeCommand(nil, "EVAL", "while true do end", "1", "sf:k"))
			time.Sleep(300 * time.Millisecond)
			backend.Kill()
			if got := rc.Read(); !strings.HasPrefix(got, "-") {
				t.Fatalf("EVAL on a server that died: %q, want an error", got)
			}
		},
	},
	{
		name: "redis client protocol error",
		run: func(t *testing.T, addr string, _ *testservers.Server) {
			rc := proxytest.Dial(t, addr)
			if got := rc.Do("SET", "sf:k", "v"); got != "+OK\r\n" {
				t.Fatalf("SET: %q", got)
			}
			rc.Write([]byte("*1\r\n$x\r\n"))
			readUntilClosed(t, rc.Net)
		},
	},
	{
		// nutcracker closes the client; shardproxy answers as Redis does.
		name: "redis unknown command",
		run: func(t *testing.T, addr string, _ *testservers.Server) {
			nc := proxytest.DialNet(t, addr)
			if got := firstLineOrClose(t, nc, string(proxytest.EncodeCommand(nil, "NOSUCHCOMMAND", "sf:k"))); got != "" && !strings.HasPrefix(got, "-ERR unknown command") {
				t.Fatalf("unknown command: %q", got)
			}
		},
		ours: keptClient,
	},
	{
		// nutcracker closes the client without a word; shardproxy answers
		// +OK first, as Redis does.
		name: "redis QUIT",
		run: func(t *testing.T, addr string, _ *testservers.Server) {
			nc := proxytest.DialNet(t, addr)
			if got := firstLineOrClose(t, nc, string(proxytest.EncodeCommand(nil, "QUIT"))); got != "" && got != "+OK\r\n" {
				t.Fatalf("QUIT: %q", got)
			}
			readUntilClosed(t, nc)
		},
	},
	{
		name: "redis client EOF with a request in flight",
		run: func(t *testing.T, addr string, _ *testservers.Server) {
			nc := proxytest.DialNet(t, addr)
			if _, err := nc.Write(proxytest.EncodeCommand(nil, "SET", "sf:k", "v")); err != nil {
				t.Fatal(err)
			}
			nc.Close()
		},
	},
	{
		name:       "memcache connection refused",
		memcache:   true,
		closedPort: true,
		run: func(t *testing.T, addr string, _ *testservers.Server) {
			nc := proxytest.DialNet(t, addr)
			r := bufio.NewReader(nc)
			for range faultRequests {
				if got := firstLine(t, nc, r, "get sf:k\r\n"); !strings.HasPrefix(got, "SERVER_ERROR") {
					t.Fatalf("get from a closed port: %q, want SERVER_ERROR", got)
				}
			}
		},
	},
	{
		// A line too long to be a request: both close the client.
		name:     "memcache client protocol error",
		memcache: true,
		run: func(t *testing.T, addr string, _ *testservers.Server) {
			nc := proxytest.DialNet(t, addr)
			if got := firstLine(t, nc, bufio.NewReader(nc), "set sf:k 0 0 1\r\nv\r\n"); got != "STORED\r\n" {
				t.Fatalf("set: %q", got)
			}
			nc.Write([]byte(strings.Repeat("x", 3000) + "\r\n"))
			readUntilClosed(t, nc)
		},
	},
	{
		// nutcracker closes the client; shardproxy answers as memcached
		// does and reads on.
		name:     "memcache bad command line",
		memcache: true,
		run: func(t *testing.T, addr string, _ *testservers.Server) {
			nc := proxytest.DialNet(t, addr)
			if got := firstLineOrClose(t, nc, "set sf:k 0 0 abc\r\n"); got != "" && got != "CLIENT_ERROR bad command line format\r\n" {
				t.Fatalf("bad command line: %q", got)
			}
		},
		ours: keptClient,
	},
}

// TestStatsFaultsMatchNutcracker makes each fault through a real nutcracker
// and through shardproxy, with the same configuration (auto_eject_hosts off
// and on), and checks that each compared counter moved as far as
// nutcracker's did, except where shardproxy deliberately counts otherwise
// (a fault's ours) or still differs (its pending).
func TestStatsFaultsMatchNutcracker(t *testing.T) {
	for _, f := range statsFaults {
		for _, eject := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/auto_eject_hosts=%v", f.name, eject), func(t *testing.T) {
				nc := runStatsFault(t, f, eject, true)
				ours := runStatsFault(t, f, eject, false)
				t.Logf("nutcracker: %s", formatCounters(nc))
				t.Logf("shardproxy: %s", formatCounters(ours))
				want := maps.Clone(nc)
				if f.ours != nil {
					maps.Copy(want, f.ours(eject))
				}
				if f.pending != nil {
					for k, v := range f.pending(eject) {
						t.Logf("pending: %s is %d here, %d in nutcracker", k, v, nc[k])
						want[k] = v
					}
				}
				for _, k := range slices.Sorted(maps.Keys(want)) {
					if ours[k] != want[k] {
						t.Errorf("%s: shardproxy %d, want %d (nutcracker %d)", k, ours[k], want[k], nc[k])
					}
				}
			})
		}
	}
}
