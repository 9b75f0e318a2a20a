package pools_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/pools"
)

// sessionDo sends one command on a session connection and returns its
// reply.
func sessionDo(t *testing.T, c *pools.SessionConn, args ...string) string {
	t.Helper()
	if err := c.Write(command(args...)); err != nil {
		t.Fatalf("%q: write: %v", args, err)
	}
	rep, err := c.ReadReply()
	if err != nil {
		t.Fatalf("%q: read: %v", args, err)
	}
	return string(rep)
}

// sessionOptions are a server's options with session connections, which
// say HELLO 3 for RESP3.
func sessionOptions(addr string, limit int) pools.Options {
	opt := redisOptions(addr)
	opt.SessionLimit = limit
	opt.Hello3 = command("HELLO", "3")
	return opt
}

// TestSessionReuse checks that a released session connection is the one
// the next session of its protocol gets, on the same server connection
// (CLIENT ID), that RESP2 and RESP3 ones are never swapped, and that
// SessionsOpen and SessionsInUse count them.
func TestSessionReuse(t *testing.T) {
	r := testservers.Redis(t)
	s := pools.NewServer(sessionOptions(r.Addr, 4))
	defer s.Close()
	sessionDo(t, mustSession(t, s, false), "HSET", "h", "f", "v")
	c2 := mustSession(t, s, false)
	id2 := sessionDo(t, c2, "CLIENT", "ID")
	c2.Release()
	c3 := mustSession(t, s, true)
	if got := sessionDo(t, c3, "HGETALL", "h"); got != "%1\r\n$1\r\nf\r\n$1\r\nv\r\n" {
		t.Errorf("HGETALL on a RESP3 session: %q, want a map", got)
	}
	id3 := sessionDo(t, c3, "CLIENT", "ID")
	c3.Release()
	if n, u := s.Stats.SessionsOpen.Load(), s.SessionsInUse(); n != 3 || u != 1 {
		t.Errorf("SessionsOpen %d, SessionsInUse %d; want 3 and 1 (one never released)", n, u)
	}
	for range 3 {
		c := mustSession(t, s, false)
		if got := sessionDo(t, c, "CLIENT", "ID"); got != id2 {
			t.Errorf("RESP2 session on connection %q, want the released %q", got, id2)
		}
		if got := sessionDo(t, c, "HGETALL", "h"); got != "*2\r\n$1\r\nf\r\n$1\r\nv\r\n" {
			t.Errorf("HGETALL on a RESP2 session: %q, want an array", got)
		}
		c.Release()
		c = mustSession(t, s, true)
		if got := sessionDo(t, c, "CLIENT", "ID"); got != id3 {
			t.Errorf("RESP3 session on connection %q, want the released %q", got, id3)
		}
		c.Release()
	}
	if n := s.Stats.SessionsOpen.Load(); n != 3 {
		t.Errorf("SessionsOpen %d after reuse, want 3", n)
	}
}

// mustSession takes a session connection.
func mustSession(t *testing.T, s *pools.Server, resp3 bool) *pools.SessionConn {
	t.Helper()
	c, err := s.Session(resp3)
	if err != nil {
		t.Fatalf("Session(%v): %v", resp3, err)
	}
	return c
}

// TestSessionLimitRefuses fills SessionLimit: the next session is refused
// at once with ErrTooManySessions and counted; a closed one frees its
// place, and idle connections of the other protocol give theirs up.
func TestSessionLimitRefuses(t *testing.T) {
	r := testservers.Redis(t)
	s := pools.NewServer(sessionOptions(r.Addr, 2))
	defer s.Close()
	a, b := mustSession(t, s, false), mustSession(t, s, false)
	start := time.Now()
	_, err := s.Session(false)
	took := time.Since(start)
	t.Logf("refused after %v: %v", took, err)
	if !errors.Is(err, pools.ErrTooManySessions) || !strings.Contains(err.Error(), "server_sessions") {
		t.Errorf("third session: %v, want ErrTooManySessions naming server_sessions", err)
	}
	if n := s.Stats.SessionRefusals.Load(); n != 1 {
		t.Errorf("SessionRefusals %d, want 1", n)
	}
	a.Close()
	c := mustSession(t, s, false)
	if n := s.Stats.SessionsOpen.Load(); n != 2 {
		t.Errorf("SessionsOpen %d, want 2", n)
	}
	// Two idle RESP2 connections: a RESP3 session takes the place of one.
	b.Release()
	c.Release()
	d, err := s.Session(true)
	if err != nil {
		t.Fatalf("RESP3 session with 2 idle RESP2 ones at the limit: %v", err)
	}
	if got := sessionDo(t, d, "HGETALL", "missing"); got != "%0\r\n" {
		t.Errorf("HGETALL on the RESP3 session: %q", got)
	}
	if n := s.Stats.SessionsOpen.Load(); n != 2 {
		t.Errorf("SessionsOpen %d, want 2", n)
	}
	d.Release()
}

// TestSessionEndsOnSetAddr moves the server while a session connection is
// in use and another is idle: the one in use fails with the failover
// error, is not taken back by Release, and the next session is dialled to
// the new address.
func TestSessionEndsOnSetAddr(t *testing.T) {
	r1, r2 := testservers.Redis(t), testservers.Redis(t)
	s := pools.NewServer(sessionOptions(r1.Addr, 4))
	defer s.Close()
	idle := mustSession(t, s, false)
	sessionDo(t, idle, "PING")
	inUse := mustSession(t, s, false)
	idle.Release()
	if err := inUse.Write(command("BLPOP", "q", "0")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := inUse.ReadReply()
		done <- err
	}()
	s.SetAddr(r2.Addr)
	select {
	case err := <-done:
		t.Logf("session in use: %v", err)
		if !errors.Is(err, pools.ErrFailover) {
			t.Errorf("session in use after SetAddr: %v, want ErrFailover", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("session in use still waiting 5 s after SetAddr")
	}
	inUse.Release() // it is dead: closed, not kept
	if n := s.Stats.SessionsOpen.Load(); n != 0 {
		t.Errorf("SessionsOpen %d after SetAddr, want 0", n)
	}
	c := mustSession(t, s, false)
	if got := sessionDo(t, c, "CONFIG", "GET", "port"); !strings.Contains(got, r2.Addr[strings.LastIndexByte(r2.Addr, ':')+1:]) {
		t.Errorf("session after SetAddr on %q, want %s", got, r2.Addr)
	}
	c.Release()
}

// TestSessionServerClose closes the server under a session in use and an
// idle one: the one in use fails with ErrClosed, later sessions are
// refused with ErrClosed, and none stays open.
func TestSessionServerClose(t *testing.T) {
	r := testservers.Redis(t)
	s := pools.NewServer(sessionOptions(r.Addr, 4))
	idle, inUse := mustSession(t, s, true), mustSession(t, s, false)
	idle.Release()
	s.Close()
	if _, err := inUse.ReadReply(); !errors.Is(err, pools.ErrClosed) {
		t.Errorf("session in use after Close: %v, want ErrClosed", err)
	}
	inUse.Release()
	if _, err := s.Session(false); !errors.Is(err, pools.ErrClosed) {
		t.Errorf("Session after Close: %v, want ErrClosed", err)
	}
	if n, u := s.Stats.SessionsOpen.Load(), s.SessionsInUse(); n != 0 || u != 0 {
		t.Errorf("SessionsOpen %d, SessionsInUse %d after Close, want 0", n, u)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		list, err := testservers.Do(r.Addr, "CLIENT", "LIST")
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(list, "\n"); n <= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connections still open on the server 5 s after Close:\n%s", list)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSessionDialledDuringSetAddr moves the server while a session
// connection is being dialled (the old server is paused, so the dial
// waits for HELLO's reply): the session fails with ErrFailover rather
// than run on the old address after the move.
func TestSessionDialledDuringSetAddr(t *testing.T) {
	r1, r2 := testservers.Redis(t), testservers.Redis(t)
	s := pools.NewServer(sessionOptions(r1.Addr, 4))
	defer s.Close()
	r1.Stop()
	type result struct {
		c   *pools.SessionConn
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := s.Session(true)
		done <- result{c, err}
	}()
	time.Sleep(100 * time.Millisecond) // the dial is waiting for HELLO's reply
	s.SetAddr(r2.Addr)
	r1.Continue()
	var res result
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Session still dialling 10 s after the server went on")
	}
	if res.err == nil {
		got := sessionDo(t, res.c, "CONFIG", "GET", "port")
		res.c.Close()
		t.Fatalf("session dialled during SetAddr: on %q, want ErrFailover", got)
	}
	t.Logf("session dialled during SetAddr: %v", res.err)
	if !errors.Is(res.err, pools.ErrFailover) {
		t.Errorf("session dialled during SetAddr: %v, want ErrFailover", res.err)
	}
	if n := s.Stats.SessionsOpen.Load(); n != 0 {
		t.Errorf("SessionsOpen %d, want 0", n)
	}
}
