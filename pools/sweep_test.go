package pools

import (
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// TestSessionSweep checks that idle session connections are closed after
// sessionIdle without any further session asking for one, and that the
// sweep stops once none is idle.
func TestSessionSweep(t *testing.T) {
	old := sessionIdle
	sessionIdle = 100 * time.Millisecond
	t.Cleanup(func() { sessionIdle = old })
	r := testservers.Redis(t)
	s := NewServer(Options{Addr: r.Addr, Name: r.Addr, Frame: func(b []byte, _ uint8) (int, error) { return resp.ReadReply(b) },
		IsError: resp.IsError, Ping: resp.AppendCommand(nil, []byte("PING"))})
	defer s.Close()
	var conns []*SessionConn
	for range 3 {
		c, err := s.Session(false)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
	if n := s.Stats.SessionsOpen.Load(); n != 3 {
		t.Fatalf("sessions open after release: %d, want 3", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats.SessionsOpen.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := s.Stats.SessionsOpen.Load(); n != 0 {
		t.Fatalf("sessions open %v after release: %d, want 0", 5*time.Second, n)
	}
	s.sessions.mu.Lock()
	sweeping := s.sessions.sweep != nil
	s.sessions.mu.Unlock()
	if sweeping {
		t.Error("the sweep goes on with no idle connection")
	}
	if out, _ := testservers.Do(r.Addr, "INFO", "clients"); !strings.Contains(out, "connected_clients:1\r\n") {
		t.Errorf("the server still has the idle connections:\n%s", out)
	}
}
