package pools_test

import (
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/pools"
)

// TestHoldRelease: requests of a held server are written nowhere, and do
// not time out, however long the hold; moved while held, they go to the
// new address on Release, with their timeout counted from then; a server
// never held, or released twice, is unaffected.
func TestHoldRelease(t *testing.T) {
	a, b := testservers.Redis(t), testservers.Redis(t)
	opt := redisOptions(a.Addr)
	opt.Timeout = 200 * time.Millisecond
	s := pools.NewServer(opt)
	defer s.Close()
	if c := send(t, s, 0, command("SET", "k", "before")); string(c[0].Reply) != "+OK\r\n" {
		t.Fatalf("SET before the hold: %q %v", c[0].Reply, c[0].Err)
	}
	s.Hold()
	if !s.Held() {
		t.Fatal("Held is false after Hold")
	}
	w := newWaiter()
	conn := s.Conn(0)
	var calls []*pools.Call
	for _, v := range []string{"held1", "held2", "held3"} {
		call := &pools.Call{Frame: command("SET", "k", v), Done: w}
		conn.Enqueue(call)
		conn.Flush()
		calls = append(calls, call)
	}
	time.Sleep(3 * opt.Timeout)
	if n := len(w.done); n != 0 {
		t.Fatalf("%d calls done while held, want 0", n)
	}
	if got, _ := testservers.Do(a.Addr, "GET", "k"); got != "before" {
		t.Fatalf("GET k on a while held: %q, want before", got)
	}
	s.SetAddr(b.Addr)
	s.Release()
	s.Release()
	w.wait(t, 3, 5*time.Second)
	for i, c := range calls {
		if c.Err != nil || string(c.Reply) != "+OK\r\n" {
			t.Errorf("call %d: %q %v, want +OK from the new address", i, c.Reply, c.Err)
		}
	}
	if got, _ := testservers.Do(b.Addr, "GET", "k"); got != "held3" {
		t.Errorf("GET k on b: %q, want held3", got)
	}
	if got, _ := testservers.Do(a.Addr, "GET", "k"); got != "before" {
		t.Errorf("GET k on a: %q, want before (nothing held went there)", got)
	}
	if c := send(t, s, 0, command("GET", "k")); string(c[0].Reply) != "$5\r\nheld3\r\n" {
		t.Errorf("GET after Release: %q %v", c[0].Reply, c[0].Err)
	}
}
