package proxytest

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

// StartRedisBackends starts n redis-server processes with extra arguments.
func StartRedisBackends(t *testing.T, n int, extra ...string) []*testservers.Server {
	t.Helper()
	out := make([]*testservers.Server, n)
	for i := range out {
		out[i] = testservers.Redis(t, extra...)
	}
	return out
}

// StartMemcacheBackends starts n memcached processes with extra arguments.
func StartMemcacheBackends(t *testing.T, n int, extra ...string) []*testservers.Server {
	t.Helper()
	out := make([]*testservers.Server, n)
	for i := range out {
		out[i] = testservers.Memcached(t, extra...)
	}
	return out
}

// ServerLines makes "addr:weight [name]" lines; weights and names may be
// nil (weight 1, no name).
func ServerLines(backends []*testservers.Server, weights []int, names []string) []string {
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

// StopServer pauses a server with SIGSTOP and waits until the kernel shows
// it stopped, so that no request sent afterwards is answered.
func StopServer(t *testing.T, s *testservers.Server) {
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

// KillServer kills a server with SIGKILL and waits until its port is
// closed.
func KillServer(t *testing.T, s *testservers.Server) {
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

// BackendDo runs commands on one connection straight to a backend (for
// AUTH and SELECT before a check) and returns the last reply.
func BackendDo(t *testing.T, addr string, cmds ...[]string) string {
	t.Helper()
	c := Dial(t, addr)
	defer c.Net.Close()
	var last string
	for _, cmd := range cmds {
		last = c.Do(cmd...)
	}
	return last
}

// Dbsize returns the number of keys in db 0 of a backend.
func Dbsize(t *testing.T, addr string) int {
	t.Helper()
	n, err := DbsizeErr(t, addr)
	if err != nil {
		t.Fatalf("DBSIZE %s: %v", addr, err)
	}
	return n
}

// DbsizeErr is Dbsize for a backend that may be down: it returns the error
// of asking it, and fails only on a reply that is no count.
func DbsizeErr(t *testing.T, addr string) (int, error) {
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

// CommandCalls returns how many times server s ran cmd (lower case), from
// its INFO commandstats.
func CommandCalls(t *testing.T, s *testservers.Server, cmd string) int {
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
