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

	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/proxy"
)

// The counters compared after a fault: the pool's, and its one server's
// (prefixed "s0.").
var (
	sfPoolKeys   = []string{"client_eof", "client_err", "client_connections", "server_ejects", "forward_error", "fragments"}
	sfServerKeys = []string{"server_eof", "server_err", "server_timedout", "server_connections", "requests", "request_bytes", "responses", "response_bytes"}
)

// sfFault is one fault, made the same way through nutcracker and through
// shardproxy, each with a backend of its own.
type sfFault struct {
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

// sfYAML is the one configuration both proxies run: pool "sf" with one
// server named "s0".
func sfYAML(f sfFault, eject bool, listen, server string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "sf:\n  listen: %s\n  redis: %v\n  hash: fnv1a_64\n  distribution: ketama\n", listen, !f.memcache)
	if f.timeoutMS > 0 {
		fmt.Fprintf(&b, "  timeout: %d\n", f.timeoutMS)
	}
	fmt.Fprintf(&b, "  auto_eject_hosts: %v\n  server_failure_limit: 2\n  server_retry_timeout: 30000\n", eject)
	fmt.Fprintf(&b, "  servers:\n    - %s:1 s0\n", server)
	return b.String()
}

// sfRun makes fault f through nutcracker (nutcracker true) or shardproxy,
// and returns how far each compared counter moved (gauges too).
func sfRun(t *testing.T, f sfFault, eject, nutcracker bool) map[string]int64 {
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
	listen := freeListen(t)
	yaml := sfYAML(f, eject, listen, server)
	var stats string
	if nutcracker {
		// nutcracker serves the counters it aggregated last: every
		// 100 ms here instead of every 30 s.
		nc := testservers.NutcrackerWith(t, yaml, testservers.NutcrackerOptions{StatsInterval: 100 * time.Millisecond}, listen)
		stats = nc.Addr
	} else {
		px := startProxyOpts(t, yaml, proxy.Options{StatsAddr: "127.0.0.1:0"})
		stats = px.StatsAddr().String()
	}
	// Settled: nutcracker's start was waited for by connecting to its
	// listener, a client_eof it may not have aggregated yet.
	before := sfSettled(t, stats)
	f.run(t, listen, backend)
	after := sfSettled(t, stats)
	for k := range after {
		after[k] -= before[k]
	}
	return after
}

// sfSettled returns the compared counters once two reads 300 ms apart
// agree (three of nutcracker's aggregations here), or after 5 s.
func sfSettled(t *testing.T, stats string) map[string]int64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	prev := sfCounters(t, stats)
	for {
		time.Sleep(300 * time.Millisecond)
		cur := sfCounters(t, stats)
		if maps.Equal(prev, cur) || time.Now().After(deadline) {
			return cur
		}
		prev = cur
	}
}

// sfCounters reads the compared counters of pool sf and server s0.
func sfCounters(t *testing.T, stats string) map[string]int64 {
	t.Helper()
	doc := fetchStats(t, stats)
	pool, _ := doc["sf"].(map[string]any)
	server, _ := pool["s0"].(map[string]any)
	out := map[string]int64{}
	for _, k := range sfPoolKeys {
		v, ok := pool[k].(float64)
		if !ok {
			t.Fatalf("stats at %s: no pool counter %s in %v", stats, k, doc)
		}
		out[k] = int64(v)
	}
	for _, k := range sfServerKeys {
		v, ok := server[k].(float64)
		if !ok {
			t.Fatalf("stats at %s: no server counter %s in %v", stats, k, doc)
		}
		out["s0."+k] = int64(v)
	}
	return out
}

// sfFormat lists counters in a fixed order, zeros left out.
func sfFormat(c map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(c)) {
		if c[k] != 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, c[k]))
		}
	}
	return strings.Join(parts, " ")
}

// sfLine sends req and returns the first line of its reply.
func sfLine(t *testing.T, nc net.Conn, r *bufio.Reader, req string) string {
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

// sfLineOrClose sends req and returns the first line of its reply, or ""
// when the proxy closes the connection instead (as nutcracker does to a
// request it cannot parse).
func sfLineOrClose(t *testing.T, nc net.Conn, req string) string {
	t.Helper()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatalf("write %q: %v", req, err)
	}
	line, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("reply to %q: %v (read %q)", req, err, line)
	}
	return line
}

// sfUntilClosed reads until the proxy closes the connection.
func sfUntilClosed(t *testing.T, nc net.Conn) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, nc); err != nil && !isReset(err) {
		t.Fatalf("want the connection closed: %v", err)
	}
}
