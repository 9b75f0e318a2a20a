package pools_test

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/pools"
)

// TestSetAddrMovesConnections: a server moved to another address fails the
// requests already written to the old one with ErrFailover (the old one
// is paused: they are unanswered), writes the ones still queued to the
// new one, and dials the new one from then on; nothing is answered twice.
func TestSetAddrMovesConnections(t *testing.T) {
	a, b := testservers.Redis(t), testservers.Redis(t)
	base := runtime.NumGoroutine()
	s := pools.NewServer(redisOptions(a.Addr))
	if c := send(t, s, 0, command("SET", "k", "on-a")); string(c[0].Reply) != "+OK\r\n" {
		t.Fatalf("SET on a: %q %v", c[0].Reply, c[0].Err)
	}
	a.Stop()
	defer a.Continue()
	w := newWaiter()
	conn := s.Conn(0)
	written := &pools.Call{Frame: command("SET", "k", "written"), Done: w}
	conn.Enqueue(written)
	conn.Flush()
	waitQueues(t, s, 0, 1) // written, unanswered
	queued := &pools.Call{Frame: command("SET", "k", "queued"), Done: w}
	conn.Enqueue(queued) // not flushed: still in the queue
	if !s.SetAddr(b.Addr) {
		t.Fatal("SetAddr reports no change")
	}
	if s.SetAddr(b.Addr) {
		t.Fatal("SetAddr to the same address reports a change")
	}
	w.wait(t, 2, 10*time.Second)
	if !errors.Is(written.Err, pools.ErrFailover) || !strings.Contains(written.Err.Error(), a.Addr) {
		t.Errorf("written call: %q, %v; want ErrFailover naming %s", written.Reply, written.Err, a.Addr)
	}
	if queued.Err != nil || string(queued.Reply) != "+OK\r\n" {
		t.Errorf("queued call: %q, %v; want +OK from the new address", queued.Reply, queued.Err)
	}
	if got, _ := testservers.Do(b.Addr, "GET", "k"); got != "queued" {
		t.Errorf("GET k on b: %q, want queued", got)
	}
	if c := send(t, s, 0, command("GET", "k")); string(c[0].Reply) != "$6\r\nqueued\r\n" {
		t.Errorf("GET after the move: %q %v", c[0].Reply, c[0].Err)
	}
	if s.Addr() != b.Addr {
		t.Errorf("Addr %s, want %s", s.Addr(), b.Addr)
	}
	if n := s.Stats.ServerConnections.Load(); n != 1 {
		t.Errorf("server_connections %d after the move, want 1", n)
	}
	a.Continue()
	time.Sleep(100 * time.Millisecond)
	if len(w.done) != 2 {
		t.Errorf("%d calls done, want 2 (nothing answered twice)", len(w.done))
	}
	s.Close()
	checkNoGoroutines(t, base)
}

// TestSetAddrUnderLoad moves a server between two addresses while
// clients keep sending: every call is answered exactly once, with a reply
// or ErrFailover, and the replies match their requests.
func TestSetAddrUnderLoad(t *testing.T) {
	a, b := testservers.Redis(t), testservers.Redis(t)
	opt := redisOptions(a.Addr)
	opt.Connections = 2
	s := pools.NewServer(opt)
	defer s.Close()
	stop := make(chan struct{})
	var failed, ok, wrong atomic.Int64
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				w := newWaiter()
				conn := s.Conn(uint64(g))
				var calls []*pools.Call
				for i := range 10 {
					v := fmt.Sprintf("%d-%d-%d", g, n, i)
					calls = append(calls, &pools.Call{Frame: command("ECHO", v), Done: w})
					conn.Enqueue(calls[i])
				}
				conn.Flush()
				w.wait(t, len(calls), 10*time.Second)
				for i, c := range calls {
					switch {
					case errors.Is(c.Err, pools.ErrFailover):
						failed.Add(1)
					case c.Err != nil:
						wrong.Add(1)
						t.Errorf("call: %v", c.Err)
					case !bytes.Contains(c.Reply, []byte(fmt.Sprintf("%d-%d-%d", g, n, i))):
						wrong.Add(1)
					default:
						ok.Add(1)
					}
				}
			}
		}()
	}
	for i := range 20 {
		time.Sleep(20 * time.Millisecond)
		if i%2 == 0 {
			s.SetAddr(b.Addr)
		} else {
			s.SetAddr(a.Addr)
		}
	}
	close(stop)
	for range 4 {
		<-done
	}
	t.Logf("%d answered, %d failed over, %d wrong", ok.Load(), failed.Load(), wrong.Load())
	if wrong.Load() != 0 || ok.Load() == 0 {
		t.Fatalf("%d wrong replies, %d right", wrong.Load(), ok.Load())
	}
}

// TestVerifyAndDemoted: a connection whose Verify refuses the handshake's
// last reply fails (ROLE on a replica, for a pool that wants a primary),
// and a -READONLY reply calls OnDemoted.
func TestVerifyAndDemoted(t *testing.T) {
	primary := testservers.Redis(t)
	replica := testservers.RedisReplica(t, primary)
	opt := redisOptions(replica.Addr)
	opt.Handshake = [][]byte{command("ROLE")}
	opt.Verify = func(reply []byte) error {
		if !bytes.HasPrefix(reply, []byte("*3\r\n$6\r\nmaster\r\n")) {
			return errors.New("not a primary")
		}
		return nil
	}
	s := pools.NewServer(opt)
	defer s.Close()
	if c := send(t, s, 0, command("PING")); !errors.Is(c[0].Err, pools.ErrUnavailable) || !strings.Contains(c[0].Err.Error(), "not a primary") {
		t.Errorf("PING through a replica refused by Verify: %q, %v", c[0].Reply, c[0].Err)
	}
	s.SetAddr(primary.Addr)
	if c := send(t, s, 0, command("PING")); c[0].Err != nil {
		t.Errorf("PING through the primary: %v", c[0].Err)
	}

	var demoted atomic.Int64
	opt = redisOptions(replica.Addr)
	opt.Demoted = []byte("-READONLY")
	opt.OnDemoted = func() { demoted.Add(1) }
	r := pools.NewServer(opt)
	defer r.Close()
	c := send(t, r, 0, command("GET", "k"), command("SET", "k", "v"))
	if !bytes.HasPrefix(c[1].Reply, []byte("-READONLY")) {
		t.Fatalf("SET on a replica: %q", c[1].Reply)
	}
	// OnDemoted is called after the read's replies are delivered: it may
	// come a moment after the calls are done.
	for deadline := time.Now().Add(2 * time.Second); demoted.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if demoted.Load() != 1 {
		t.Errorf("OnDemoted called %d times, want 1", demoted.Load())
	}
}

// TestSetAddrEndsEjection: a server ejected at a dead address is checked
// at once when it moves to a live one, not after its retry timeout.
func TestSetAddrEndsEjection(t *testing.T) {
	live := testservers.Redis(t)
	opt := redisOptions(closedAddr(t))
	opt.AutoEject, opt.FailFast, opt.FailureLimit, opt.RetryTimeout = true, true, 1, time.Hour
	s := pools.NewServer(opt)
	defer s.Close()
	send(t, s, 0, command("PING"))
	if !s.Ejected() {
		t.Fatal("not ejected after a refused connect")
	}
	s.SetAddr(live.Addr)
	deadline := time.Now().Add(5 * time.Second)
	for s.Ejected() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s.Ejected() {
		t.Fatal("still ejected 5 s after moving to a live address")
	}
	if c := send(t, s, 0, command("PING")); c[0].Err != nil || s.Stats.Failovers.Load() != 1 {
		t.Errorf("PING after the move: %q %v; failovers %d", c[0].Reply, c[0].Err, s.Stats.Failovers.Load())
	}
}
