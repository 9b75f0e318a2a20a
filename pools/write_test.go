package pools_test

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/pools"
)

// TestOneGoroutinePerConnection: a live connection costs its reader's
// goroutine only; its writes are made by whoever queued or flushed, and
// by a goroutine of their own only while the socket is full.
func TestOneGoroutinePerConnection(t *testing.T) {
	r := testservers.Redis(t)
	base := runtime.NumGoroutine()
	opt := redisOptions(r.Addr)
	opt.Connections = 32
	s := pools.NewServer(opt)
	for cl := range uint64(32) {
		send(t, s, cl, command("SET", fmt.Sprint("k", cl), "v"), command("GET", fmt.Sprint("k", cl)))
	}
	if got := s.Stats.ServerConnections.Load(); got != 32 {
		t.Fatalf("%d server connections, want 32", got)
	}
	// A goroutine that closed a connection, or a dial's, may still be
	// on its way out: allow a moment.
	var n int
	for range 100 {
		if n = runtime.NumGoroutine() - base; n <= 32 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n > 32 {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines for 32 idle connections, want 32 (their readers):\n%s", n, buf[:runtime.Stack(buf, true)])
	}
	s.Close()
	checkNoGoroutines(t, base)
}

// TestWriteWhileServerBusy queues far more than the sockets hold while the
// server does not read (DEBUG SLEEP): the writes that do not fit finish
// later, in order, frames copied and frames written where they lie alike,
// and every reply comes back to its call.
func TestWriteWhileServerBusy(t *testing.T) {
	r := testservers.Redis(t, "--enable-debug-command", "yes")
	base := runtime.NumGoroutine()
	s := pools.NewServer(redisOptions(r.Addr))
	send(t, s, 0, command("PING")) // connected
	sleeper := make(chan error, 1)
	go func() {
		got, err := testservers.Do(r.Addr, "DEBUG", "SLEEP", "1")
		if err == nil && got != "+OK" {
			err = fmt.Errorf("DEBUG SLEEP: %s", got)
		}
		sleeper <- err
	}()
	time.Sleep(100 * time.Millisecond) // the server sleeps
	small := strings.Repeat("s", 16<<10)
	large := strings.Repeat("L", 200<<10) // over bigFrame: written where it lies
	w := newWaiter()
	c := s.Conn(0)
	var calls []*pools.Call
	const n = 600
	for i := range n {
		v := small
		if i%10 == 0 {
			v = large
		}
		set := &pools.Call{Frame: command("SET", fmt.Sprint("w", i), v), Done: w}
		get := &pools.Call{Frame: command("STRLEN", fmt.Sprint("w", i)), Done: w}
		c.Enqueue(set)
		c.Enqueue(get)
		calls = append(calls, set, get)
		if i%50 == 0 {
			c.Flush() // each flush finds the socket full, or its writer busy
		}
	}
	c.Flush()
	select {
	case err := <-sleeper:
		t.Fatalf("the server woke before the writes were queued (%v): nothing was tested", err)
	default:
	}
	w.wait(t, len(calls), 20*time.Second)
	if err := <-sleeper; err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(calls); i += 2 {
		want := len(small)
		if (i/2)%10 == 0 {
			want = len(large)
		}
		set, get := calls[i], calls[i+1]
		if set.Err != nil || !bytes.Equal(set.Reply, []byte("+OK\r\n")) {
			t.Fatalf("SET %d: %q, %v", i/2, set.Reply, set.Err)
		}
		if get.Err != nil || string(get.Reply) != fmt.Sprintf(":%d\r\n", want) {
			t.Fatalf("STRLEN %d: %q, %v; want :%d", i/2, get.Reply, get.Err, want)
		}
	}
	if got := s.Stats.ServerConnections.Load(); got != 1 {
		t.Fatalf("%d server connections, want 1", got)
	}
	s.Close()
	checkNoGoroutines(t, base)
}
