package proxy_test

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

// startRedisBackends starts n redis-server processes with extra arguments.
func startRedisBackends(t *testing.T, n int, extra ...string) []*testservers.Server {
	t.Helper()
	out := make([]*testservers.Server, n)
	for i := range out {
		out[i] = testservers.Redis(t, extra...)
	}
	return out
}

// startMemcacheBackends starts n memcached processes with extra arguments.
func startMemcacheBackends(t *testing.T, n int, extra ...string) []*testservers.Server {
	t.Helper()
	out := make([]*testservers.Server, n)
	for i := range out {
		out[i] = testservers.Memcached(t, extra...)
	}
	return out
}

// serverLines makes "addr:weight [name]" lines; weights and names may be
// nil (weight 1, no name).
func serverLines(backends []*testservers.Server, weights []int, names []string) []string {
	lines := make([]string, len(backends))
	for i, s := range backends {
		w := 1
		if weights != nil {
			w = weights[i]
		}
		lines[i] = fmt.Sprintf("%s:%d", s.Addr, w)
		if names != nil {
			lines[i] += " " + names[i]
		}
	}
	return lines
}

// stopServer pauses a server with SIGSTOP and waits until the kernel shows
// it stopped, so that no request sent afterwards is answered.
func stopServer(t *testing.T, s *testservers.Server) {
	t.Helper()
	s.Stop()
	stat := fmt.Sprintf("/proc/%d/stat", s.Cmd.Process.Pid)
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		b, err := os.ReadFile(stat)
		if err != nil {
			t.Fatalf("server state: %v", err)
		}
		// The state follows the parenthesised command name.
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 && strings.HasPrefix(string(b[i:]), ") T") {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%s did not stop", s.Addr)
}

// killServer kills a server with SIGKILL and waits until its port is
// closed.
func killServer(t *testing.T, s *testservers.Server) {
	t.Helper()
	if err := s.Cmd.Process.Kill(); err != nil {
		t.Fatalf("kill %s: %v", s.Addr, err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		nc, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond)
		if err != nil {
			return
		}
		nc.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still listening 5 s after SIGKILL", s.Addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// backendDo runs commands on one connection straight to a backend (for
// AUTH and SELECT before a check) and returns the last reply.
func backendDo(t *testing.T, addr string, cmds ...[]string) string {
	t.Helper()
	c := dialClient(t, addr)
	defer c.nc.Close()
	var last string
	for _, cmd := range cmds {
		last = c.do(cmd...)
	}
	return last
}

// dbsize returns the number of keys in db 0 of a backend.
func dbsize(t *testing.T, addr string) int {
	t.Helper()
	n, err := dbsizeErr(t, addr)
	if err != nil {
		t.Fatalf("DBSIZE %s: %v", addr, err)
	}
	return n
}

// dbsizeErr is dbsize for a backend that may be down: it returns the error
// of asking it, and fails only on a reply that is no count.
func dbsizeErr(t *testing.T, addr string) (int, error) {
	t.Helper()
	s, err := testservers.Do(addr, "DBSIZE")
	if err != nil {
		return -1, err
	}
	n, err := strconv.Atoi(strings.TrimPrefix(s, ":"))
	if err != nil {
		t.Fatalf("DBSIZE %s: %q", addr, s)
	}
	return n, nil
}

// commandCalls returns how many times server s ran cmd (lower case), from
// its INFO commandstats.
func commandCalls(t *testing.T, s *testservers.Server, cmd string) int {
	t.Helper()
	info, err := testservers.Do(s.Addr, "INFO", "commandstats")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(info, "cmdstat_"+cmd+":calls=")
	if !ok {
		return 0
	}
	n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
	return n
}
