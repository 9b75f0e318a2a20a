package proxy_test

import (
	"bufio"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

// sfRequests is how many requests a fault sends where it sends many.
const sfRequests = 20

// sfKeptClient is how shardproxy counts a client it answers with an error
// and keeps where nutcracker closes it (a request it cannot parse): no
// client_err, and the client still connected.
func sfKeptClient(bool) map[string]int64 {
	return map[string]int64{"client_err": 0, "client_connections": 1}
}

// sfFaults are the faults compared; each leaves its client connected
// unless it is about the client closing.
var sfFaults = []sfFault{
	{
		name: "redis answered (control)",
		run: func(t *testing.T, addr string, _ *testservers.Server) {
			rc := dialClient(t, addr)
			for range 3 {
				if got := rc.do("SET", "sf:k", "v"); got != "+OK\r\n" {
					t.Fatalf("SET: %q", got)
				}
			}
		},
	},
	{
		name:       "redis connection refused",
		closedPort: true,
		run: func(t *testing.T, addr string, _ *testservers.Server) {
			rc := dialClient(t, addr)
			for range sfRequests {
				if got := rc.do("GET", "sf:k"); !strings.HasPrefix(got, "-") {
					t.Fatalf("GET from a closed port: %q, want an error", got)
				}
			}
		},
	},
	{
		name: "redis server killed",
		run: func(t *testing.T, addr string, backend *testservers.Server) {
			rc := dialClient(t, addr)
			if got := rc.do("SET", "sf:k", "v"); got != "+OK\r\n" {
				t.Fatalf("SET: %q", got)
			}
			backend.Kill()
			time.Sleep(200 * time.Millisecond) // the proxy sees the EOF
			for range sfRequests {
				if got := rc.do("GET", "sf:k"); !strings.HasPrefix(got, "-") {
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
			rc := dialClient(t, addr)
			for range 5 {
				if got := rc.do("GET", "sf:k"); !strings.HasPrefix(got, "-") {
					t.Fatalf("GET from a stopped server: %q, want an error", got)
				}
			}
		},
	},
	{
		name: "redis server EOF with a request in flight",
		run: func(t *testing.T, addr string, backend *testservers.Server) {
			rc := dialClient(t, addr)
			if got := rc.do("SET", "sf:k", "v"); got != "+OK\r\n" {
				t.Fatalf("SET: %q", got)
			}
			// The script never returns: the server has read the request
			// and answers nothing until it dies, which closes the
			// connection with no unread bytes (a FIN, not a reset).
			rc.write(encodeCommand(nil, "EVAL", "while true do end", "1", "sf:k"))
			time.Sleep(300 * time.Millisecond)
			backend.Kill()
			if got := rc.read(); !strings.HasPrefix(got, "-") {
				t.Fatalf("EVAL on a server that died: %q, want an error", got)
			}
		},
	},
	{
		name: "redis client protocol error",
		run: func(t *testing.T, addr string, _ *testservers.Server) {
			rc := dialClient(t, addr)
			if got := rc.do("SET", "sf:k", "v"); got != "+OK\r\n" {
				t.Fatalf("SET: %q", got)
			}
			rc.write([]byte("*1\r\n$x\r\n"))
			sfUntilClosed(t, rc.nc)
		},
	},
	{
		// nutcracker closes the client; shardproxy answers as Redis does.
		name: "redis unknown command",
		run: func(t *testing.T, addr string, _ *testservers.Server) {
			nc := dialConn(t, addr)
			if got := sfLineOrClose(t, nc, string(encodeCommand(nil, "NOSUCHCOMMAND", "sf:k"))); got != "" && !strings.HasPrefix(got, "-ERR unknown command") {
				t.Fatalf("unknown command: %q", got)
			}
		},
		ours: sfKeptClient,
	},
	{
		// nutcracker closes the client without a word; shardproxy answers
		// +OK first, as Redis does.
		name: "redis QUIT",
		run: func(t *testing.T, addr string, _ *testservers.Server) {
			nc := dialConn(t, addr)
			if got := sfLineOrClose(t, nc, string(encodeCommand(nil, "QUIT"))); got != "" && got != "+OK\r\n" {
				t.Fatalf("QUIT: %q", got)
			}
			sfUntilClosed(t, nc)
		},
	},
	{
		name: "redis client EOF with a request in flight",
		run: func(t *testing.T, addr string, _ *testservers.Server) {
			nc := dialConn(t, addr)
			if _, err := nc.Write(encodeCommand(nil, "SET", "sf:k", "v")); err != nil {
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
			nc := dialConn(t, addr)
			r := bufio.NewReader(nc)
			for range sfRequests {
				if got := sfLine(t, nc, r, "get sf:k\r\n"); !strings.HasPrefix(got, "SERVER_ERROR") {
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
			nc := dialConn(t, addr)
			if got := sfLine(t, nc, bufio.NewReader(nc), "set sf:k 0 0 1\r\nv\r\n"); got != "STORED\r\n" {
				t.Fatalf("set: %q", got)
			}
			nc.Write([]byte(strings.Repeat("x", 3000) + "\r\n"))
			sfUntilClosed(t, nc)
		},
	},
	{
		// nutcracker closes the client; shardproxy answers as memcached
		// does and reads on.
		name:     "memcache bad command line",
		memcache: true,
		run: func(t *testing.T, addr string, _ *testservers.Server) {
			nc := dialConn(t, addr)
			if got := sfLineOrClose(t, nc, "set sf:k 0 0 abc\r\n"); got != "" && got != "CLIENT_ERROR bad command line format\r\n" {
				t.Fatalf("bad command line: %q", got)
			}
		},
		ours: sfKeptClient,
	},
}

// TestStatsFaultsMatchNutcracker makes each fault through a real nutcracker
// and through shardproxy, with the same configuration (auto_eject_hosts off
// and on), and checks that each compared counter moved as far as
// nutcracker's did, except where shardproxy deliberately counts otherwise
// (a fault's ours) or still differs (its pending).
func TestStatsFaultsMatchNutcracker(t *testing.T) {
	for _, f := range sfFaults {
		for _, eject := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/auto_eject_hosts=%v", f.name, eject), func(t *testing.T) {
				nc := sfRun(t, f, eject, true)
				ours := sfRun(t, f, eject, false)
				t.Logf("nutcracker: %s", sfFormat(nc))
				t.Logf("shardproxy: %s", sfFormat(ours))
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
