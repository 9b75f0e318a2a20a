package pools_test

import (
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/pools"
)

// sendOn enqueues frames on conn, flushes, and waits for them.
func sendOn(t *testing.T, conn *pools.Conn, frames ...[]byte) []string {
	t.Helper()
	w := newWaiter()
	calls := make([]*pools.Call, len(frames))
	for i, f := range frames {
		calls[i] = &pools.Call{Frame: f, Done: w}
		conn.Enqueue(calls[i])
	}
	conn.Flush()
	w.wait(t, len(frames), 10*time.Second)
	out := make([]string, len(calls))
	for i, c := range calls {
		if c.Err != nil {
			t.Fatalf("call %d: %v", i, c.Err)
		}
		out[i] = string(c.Reply)
	}
	return out
}

// TestHello3Connections checks the second set of connections: Conn3 says
// Hello3 after the handshake (its replies are RESP3), Conn does not, the
// handshake's Verify still checks the reply to the handshake's last frame,
// and a push the server sends where no request waits (a client-tracking
// invalidation) is counted and dropped, never taken for a reply.
func TestHello3Connections(t *testing.T) {
	r := testservers.Redis(t, "--requirepass", "pw")
	opt := redisOptions(r.Addr)
	opt.Connections = 2
	opt.Handshake = [][]byte{command("AUTH", "pw"), command("SELECT", "1")}
	var verified []string
	opt.Verify = func(reply []byte) error {
		verified = append(verified, string(reply))
		return nil
	}
	opt.Hello3 = command("HELLO", "3")
	opt.IsPush = func(reply []byte) bool { return reply[0] == '>' }
	s := pools.NewServer(opt)
	defer s.Close()

	if got := sendOn(t, s.Conn(7), command("HSET", "h", "f", "v"), command("HGETALL", "h"))[1]; got != "*2\r\n$1\r\nf\r\n$1\r\nv\r\n" {
		t.Fatalf("HGETALL on Conn: %q, want a RESP2 array", got)
	}
	if got := sendOn(t, s.Conn3(7), command("HGETALL", "h"), command("GET", "missing")); got[0] != "%1\r\n$1\r\nf\r\n$1\r\nv\r\n" || got[1] != "_\r\n" {
		t.Fatalf("HGETALL, GET missing on Conn3: %q, want a RESP3 map and null", got)
	}
	if s.Conn3(7) == s.Conn(7) || s.Conn3(7) != s.Conn3(9) {
		t.Fatal("Conn3 is not a connection of its own set of 2")
	}
	for i, v := range verified {
		if v != "+OK\r\n" {
			t.Errorf("Verify %d got %q, want the reply to SELECT", i, v)
		}
	}

	// A tracked key changed by another connection: the server pushes an
	// invalidation on the tracking connection, between replies.
	conn := s.Conn3(1)
	sendOn(t, conn, command("CLIENT", "TRACKING", "ON"), command("SET", "k", "1"), command("GET", "k"))
	sendOn(t, s.Conn(1), command("SET", "k", "2"))
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats.Pushes.Load() == 0 && time.Now().Before(deadline) {
		if got := sendOn(t, conn, command("PING", "x")); got[0] != "$1\r\nx\r\n" {
			t.Fatalf("PING x after a push: %q", got[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := s.Stats.Pushes.Load(); n != 1 {
		t.Fatalf("pushes counted: %d, want 1", n)
	}
	got := sendOn(t, conn, command("GET", "k"), command("ECHO", "after"))
	if got[0] != "$1\r\n2\r\n" || got[1] != "$5\r\nafter\r\n" {
		t.Fatalf("replies after the push: %q", got)
	}
	if !strings.HasPrefix(sendOn(t, s.Conn(1), command("GET", "k"))[0], "$1\r\n2") {
		t.Fatal("RESP2 connection out of step")
	}
}
