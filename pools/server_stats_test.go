package pools_test

import (
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/pools"
)

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(testservers.FreePort(t, "127.0.0.1")))
}

// TestRefusedConnectCountsServerErr checks that each connect the server
// refuses counts one server_err, as nutcracker counts it, and nothing else.
func TestRefusedConnectCountsServerErr(t *testing.T) {
	s := pools.NewServer(redisOptions(closedAddr(t)))
	defer s.Close()
	for i := 1; i <= 3; i++ {
		calls := send(t, s, 1, command("GET", "k"))
		if !errors.Is(calls[0].Err, pools.ErrUnavailable) {
			t.Fatalf("call %d: err %v, want ErrUnavailable", i, calls[0].Err)
		}
		if got := s.Stats.ServerErr.Load(); got != int64(i) {
			t.Fatalf("after %d refused connects: server_err %d", i, got)
		}
	}
	st := &s.Stats
	if eof, to, conns := st.ServerEOF.Load(), st.ServerTimedout.Load(), st.ServerConnections.Load(); eof+to+conns != 0 {
		t.Errorf("server_eof %d, server_timedout %d, server_connections %d; want 0", eof, to, conns)
	}
}

// TestFailedHealthCheckCountsServerErr checks that an ejected server whose
// health check cannot connect counts server_err on every check.
func TestFailedHealthCheckCountsServerErr(t *testing.T) {
	opt := redisOptions(closedAddr(t))
	opt.AutoEject, opt.FailureLimit, opt.RetryTimeout = true, 1, 20*time.Millisecond
	s := pools.NewServer(opt)
	defer s.Close()
	send(t, s, 1, command("GET", "k"))
	if !s.Ejected() {
		t.Fatal("not ejected after a refused connect with server_failure_limit 1")
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats.ServerErr.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("server_err %d after 5 s of failing health checks", s.Stats.ServerErr.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCloseDuringDialCountsNoServerErr checks that a connect cut short by
// Close is not counted as a server error: the server answers no handshake,
// and the proxy closes while it waits.
func TestCloseDuringDialCountsNoServerErr(t *testing.T) {
	opt := redisOptions(silentServer(t))
	opt.Handshake = [][]byte{command("AUTH", "pw")}
	opt.Timeout = 300 * time.Millisecond
	s := pools.NewServer(opt)
	w := newWaiter()
	call := &pools.Call{Frame: command("GET", "k"), Done: w}
	c := s.Conn(1)
	c.Enqueue(call)
	go c.Flush() // dials here, waiting for the handshake's reply
	time.Sleep(50 * time.Millisecond)
	s.Close()
	w.wait(t, 1, 5*time.Second)
	if call.Err == nil {
		t.Fatal("GET answered by a server that answers nothing")
	}
	if got := s.Stats.ServerErr.Load(); got != 0 {
		t.Errorf("server_err %d after a dial cut short by Close, want 0", got)
	}
}

// silentServer returns the address of a server that accepts connections
// and never answers.
func silentServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		var held []net.Conn // silent until the test ends
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	return ln.Addr().String()
}

// seenAtDone records what a call's client could see when told the call
// was done.
type seenAtDone struct {
	s                *pools.Server
	ejected          bool
	serverErr, timed int64
	done             chan struct{}
}

func (d *seenAtDone) CallDone(*pools.Call) {
	d.ejected = d.s.Ejected()
	d.serverErr, d.timed = d.s.Stats.ServerErr.Load(), d.s.Stats.ServerTimedout.Load()
	close(d.done)
}

// TestFailureCountedBeforeCallsHear checks that a failure that ejects the
// server has ejected it, and is counted, by the time the failed call's
// client hears of it: a client that sends its next request at once must
// not reach the server again.
func TestFailureCountedBeforeCallsHear(t *testing.T) {
	for _, tc := range []struct {
		name, addr     string
		timeout        time.Duration
		wantErr, wantT int64
	}{
		{"refused connect", closedAddr(t), 0, 1, 0},
		{"timeout", silentServer(t), 100 * time.Millisecond, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt := redisOptions(tc.addr)
			opt.Timeout = tc.timeout
			opt.AutoEject, opt.FailureLimit, opt.RetryTimeout = true, 1, time.Minute
			s := pools.NewServer(opt)
			defer s.Close()
			d := &seenAtDone{s: s, done: make(chan struct{})}
			c := s.Conn(1)
			c.Enqueue(&pools.Call{Frame: command("GET", "k"), Done: d})
			c.Flush()
			select {
			case <-d.done:
			case <-time.After(5 * time.Second):
				t.Fatal("call not done after 5 s")
			}
			if !d.ejected || d.serverErr != tc.wantErr || d.timed != tc.wantT {
				t.Errorf("when the call was done: ejected %v, server_err %d, server_timedout %d; want true, %d, %d",
					d.ejected, d.serverErr, d.timed, tc.wantErr, tc.wantT)
			}
		})
	}
}
