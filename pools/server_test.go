package pools_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/pools"
)

// waiter collects done calls.
type waiter struct {
	mu   sync.Mutex
	done []*pools.Call
	ch   chan struct{}
}

func newWaiter() *waiter { return &waiter{ch: make(chan struct{}, 1<<16)} }

func (w *waiter) CallDone(c *pools.Call) {
	w.mu.Lock()
	w.done = append(w.done, c)
	w.mu.Unlock()
	w.ch <- struct{}{}
}

func (w *waiter) wait(t *testing.T, n int, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for i := 0; i < n; i++ {
		select {
		case <-w.ch:
		case <-deadline:
			t.Fatalf("%d of %d calls done after %v", i, n, d)
		}
	}
}

func redisOptions(addr string) pools.Options {
	return pools.Options{
		Addr:    addr,
		Name:    addr,
		Frame:   func(b []byte, _ uint8) (int, error) { return resp.ReadReply(b) },
		IsError: resp.IsError,
		Ping:    resp.AppendCommand(nil, []byte("PING")),
	}
}

func command(args ...string) []byte {
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	return resp.AppendCommand(nil, bs...)
}

// send enqueues frames on one connection, flushes, and waits for them.
func send(t *testing.T, s *pools.Server, client uint64, frames ...[]byte) []*pools.Call {
	t.Helper()
	w := newWaiter()
	c := s.Conn(client)
	calls := make([]*pools.Call, len(frames))
	for i, f := range frames {
		calls[i] = &pools.Call{Frame: f, Done: w}
		c.Enqueue(calls[i])
	}
	c.Flush()
	w.wait(t, len(frames), 10*time.Second)
	return calls
}

func checkNoGoroutines(t *testing.T, base int) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if runtime.NumGoroutine() <= base {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	buf := make([]byte, 1<<16)
	t.Fatalf("%d goroutines left (base %d):\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
}

func TestRepliesInOrderAcrossClients(t *testing.T) {
	r := testservers.Redis(t)
	base := runtime.NumGoroutine()
	s := pools.NewServer(redisOptions(r.Addr))
	var wg sync.WaitGroup
	for cl := 0; cl < 20; cl++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var frames [][]byte
			for i := 0; i < 200; i++ {
				frames = append(frames, command("SET", fmt.Sprintf("k%d", cl), fmt.Sprint(i)), command("GET", fmt.Sprintf("k%d", cl)))
			}
			calls := send(t, s, uint64(cl), frames...)
			for i := 1; i < len(calls); i += 2 {
				want := fmt.Sprintf("$%d\r\n%d\r\n", len(fmt.Sprint(i/2)), i/2)
				if calls[i].Err != nil || string(calls[i].Reply) != want {
					t.Errorf("client %d call %d: %q %v, want %q", cl, i, calls[i].Reply, calls[i].Err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got := s.Stats.ServerConnections.Load(); got != 1 {
		t.Fatalf("%d server connections, want 1", got)
	}
	s.Close()
	checkNoGoroutines(t, base)
}

func TestHandshakeAndRefusal(t *testing.T) {
	r := testservers.Redis(t, "--requirepass", "pw")
	opt := redisOptions(r.Addr)
	opt.Handshake = [][]byte{command("AUTH", "pw"), command("SELECT", "2")}
	s := pools.NewServer(opt)
	defer s.Close()
	calls := send(t, s, 0, command("SET", "a", "1"))
	if calls[0].Err != nil || string(calls[0].Reply) != "+OK\r\n" {
		t.Fatalf("SET: %q %v", calls[0].Reply, calls[0].Err)
	}
	if got, _ := testservers.Do(r.Addr, "AUTH", "pw"); got != "+OK" {
		t.Fatal(got)
	}
	bad := redisOptions(r.Addr)
	bad.Handshake = [][]byte{command("AUTH", "wrong")}
	s2 := pools.NewServer(bad)
	defer s2.Close()
	calls = send(t, s2, 0, command("PING"))
	if !errors.Is(calls[0].Err, pools.ErrUnavailable) || !strings.Contains(calls[0].Err.Error(), "handshake refused") {
		t.Fatalf("want a handshake refusal, got %q %v", calls[0].Reply, calls[0].Err)
	}
}

func TestTimeoutFailsQueuedCallsInOrder(t *testing.T) {
	r := testservers.Redis(t)
	opt := redisOptions(r.Addr)
	opt.Timeout = 200 * time.Millisecond
	s := pools.NewServer(opt)
	defer s.Close()
	send(t, s, 0, command("PING"))
	r.Stop()
	defer r.Continue()
	start := time.Now()
	var frames [][]byte
	for i := 0; i < 50; i++ {
		frames = append(frames, command("GET", "x"))
	}
	calls := send(t, s, 0, frames...)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("calls failed after %v", d)
	}
	for i, c := range calls {
		if !errors.Is(c.Err, pools.ErrTimeout) {
			t.Fatalf("call %d: %q %v, want a timeout", i, c.Reply, c.Err)
		}
	}
	r.Continue()
	if calls := send(t, s, 0, command("PING")); calls[0].Err != nil {
		t.Fatalf("after the server is back: %v", calls[0].Err)
	}
}

func TestEjectionAndHealthCheck(t *testing.T) {
	r := testservers.Redis(t)
	opt := redisOptions(r.Addr)
	opt.AutoEject = true
	opt.FailFast = true
	opt.FailureLimit = 2
	opt.RetryTimeout = 100 * time.Millisecond
	changes := make(chan bool, 10)
	var s *pools.Server
	opt.OnStateChange = func() { changes <- s.Ejected() }
	s = pools.NewServer(opt)
	defer s.Close()
	send(t, s, 0, command("PING"))
	r.Kill()
	for i := 0; i < 2; i++ {
		if c := send(t, s, 0, command("PING")); c[0].Err == nil {
			t.Fatal("PING to a killed server succeeded")
		}
	}
	if ej := <-changes; !ej || !s.Ejected() {
		t.Fatal("not ejected after 2 failures")
	}
	if c := send(t, s, 0, command("PING")); !errors.Is(c[0].Err, pools.ErrEjected) {
		t.Fatalf("want ErrEjected, got %v", c[0].Err)
	}
	time.Sleep(300 * time.Millisecond)
	if !s.Ejected() {
		t.Fatal("back without a server to check")
	}
	r.Restart()
	select {
	case ej := <-changes:
		if ej {
			t.Fatal("second change is not a return")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server not back after its health check")
	}
	if c := send(t, s, 0, command("PING")); c[0].Err != nil {
		t.Fatalf("after return: %v", c[0].Err)
	}
}

// TestQueuesAndPacing: while the server owes replies, newly queued requests
// wait (in_queue) and go out in one write when the replies come.
func TestQueuesAndPacing(t *testing.T) {
	r := testservers.Redis(t)
	s := pools.NewServer(redisOptions(r.Addr))
	defer s.Close()
	send(t, s, 0, command("PING"))
	r.Stop()
	defer r.Continue()
	w := newWaiter()
	c := s.Conn(0)
	for i := 0; i < 3; i++ {
		c.Enqueue(&pools.Call{Frame: command("PING"), Done: w})
	}
	c.Flush()
	waitQueues(t, s, 0, 3)
	for i := 0; i < 2; i++ {
		c.Enqueue(&pools.Call{Frame: command("PING"), Done: w})
	}
	c.Flush()
	ping := len(command("PING"))
	if q := s.Queues(); q != (pools.Queues{In: 2, InBytes: 2 * ping, Out: 3, OutBytes: 3 * ping}) {
		t.Fatalf("queues %+v, want 2 (%d bytes) / 3 (%d bytes)", q, 2*ping, 3*ping)
	}
	r.Continue()
	w.wait(t, 5, 10*time.Second)
	waitQueues(t, s, 0, 0)
}

func waitQueues(t *testing.T, s *pools.Server, wantIn, wantOut int) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if q := s.Queues(); q.In == wantIn && q.Out == wantOut {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	q := s.Queues()
	t.Fatalf("queues %d / %d, want %d / %d", q.In, q.Out, wantIn, wantOut)
}
