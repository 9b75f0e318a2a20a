package pools_test

import (
	"bytes"
	"runtime"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/pools"
)

// probe runs a check of s and waits for its end.
func probe(t *testing.T, s *pools.Server) {
	t.Helper()
	select {
	case <-s.Probe():
	case <-time.After(15 * time.Second):
		t.Fatal("check not done after 15 s")
	}
}

// TestProbe checks Probe: a server neither dialled nor checked is neither
// up nor down; a check of a dead address makes it down, of a live server
// up, and one whose handshake is refused down again; no check moves a
// counter.
func TestProbe(t *testing.T) {
	addr := closedAddr(t)
	opt := redisOptions(addr)
	s := pools.NewServer(opt)
	defer s.Close()
	if s.Up() || s.Down() {
		t.Fatalf("before any check: up %v, down %v", s.Up(), s.Down())
	}
	probe(t, s)
	if s.Up() || !s.Down() {
		t.Fatalf("after a check of a dead address: up %v, down %v", s.Up(), s.Down())
	}
	r := testservers.Redis(t)
	s.SetAddr(r.Addr)
	probe(t, s)
	if !s.Up() || s.Down() {
		t.Fatalf("after a check of a live server: up %v, down %v", s.Up(), s.Down())
	}
	st := &s.Stats
	if n := st.ServerErr.Load() + st.Connects.Load() + st.ServerConnections.Load() + st.Requests.Load(); n != 0 {
		t.Errorf("checks moved the counters: server_err %d, connects %d, server_connections %d, requests %d",
			st.ServerErr.Load(), st.Connects.Load(), st.ServerConnections.Load(), st.Requests.Load())
	}
	// A handshake the server refuses (a wrong password) fails the check.
	bad := opt
	bad.Addr, bad.Handshake = r.Addr, [][]byte{command("AUTH", "wrong")}
	b := pools.NewServer(bad)
	defer b.Close()
	probe(t, b)
	if !b.Down() {
		t.Fatal("a check whose handshake is refused left the server not down")
	}
}

// TestRefusesMarksDown checks Options.Refuses: a reply it tells marks the
// server down before the call is done, and the next successful check
// makes it up again.
func TestRefusesMarksDown(t *testing.T) {
	r := testservers.Redis(t)
	opt := redisOptions(r.Addr)
	opt.Refuses = func(reply []byte) bool { return bytes.HasPrefix(reply, []byte("-WRONGTYPE")) }
	s := pools.NewServer(opt)
	defer s.Close()
	send(t, s, 1, command("LPUSH", "list", "x"))
	if !s.Up() {
		t.Fatal("not up after a reply")
	}
	w := &seenUp{s: s, done: make(chan struct{})}
	c := &pools.Call{Frame: command("GET", "list"), Done: w}
	conn := s.Conn(1)
	conn.Enqueue(c)
	conn.Flush()
	<-w.done
	if w.up || !w.down {
		t.Fatalf("when told of a refused call (%q): up %v, down %v; want down", c.Reply, w.up, w.down)
	}
	probe(t, s)
	if !s.Up() {
		t.Fatal("not up after a successful check")
	}
}

// seenUp records the server's state when a call is done.
type seenUp struct {
	s        *pools.Server
	up, down bool
	done     chan struct{}
}

func (w *seenUp) CallDone(*pools.Call) {
	w.up, w.down = w.s.Up(), w.s.Down()
	close(w.done)
}

// TestCloseStopsProbe checks that Close ends a check under way at once,
// even one waiting for a server that never answers its handshake.
func TestCloseStopsProbe(t *testing.T) {
	opt := redisOptions(silentServer(t))
	base := runtime.NumGoroutine()
	opt.Timeout = time.Minute
	opt.Handshake = [][]byte{command("PING")}
	s := pools.NewServer(opt)
	done := s.Probe()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	s.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the check did not end 5 s after Close")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v with a check under way", d)
	}
	checkNoGoroutines(t, base)
}
