package proxy_test

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/proxy"
)

// TestLoopClientsHandOver has plain clients, served by the event loops,
// go through every kind of request that needs a goroutine (a transaction,
// a watch, a blocking pop that times out and one that is served, a
// subscription, a HELLO 3 and back) with plain requests in between, in
// pipelines that mix both: every reply is Redis's, and afterwards every
// client waits in its loop again, holding no goroutine.
func TestLoopClientsHandOver(t *testing.T) {
	backends := proxytest.StartRedisBackends(t, 2)
	// A client with a goroutine would park only after a minute: those
	// back in a loop went back at once.
	px := proxytest.StartProxyOpts(t, proxytest.PoolYAML(proxytest.FreeListen(t), backends, "client_park_after: 60000"),
		proxy.Options{StatsAddr: "127.0.0.1:0"})
	addr := px.Addr(0).String()
	const n = 16
	before := runtime.NumGoroutine()
	conns := make([]*proxytest.Conn, n)
	for i := range conns {
		conns[i] = proxytest.Dial(t, addr)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, q := fmt.Sprintf("loop:%d", i), fmt.Sprintf("{loop:%d}q", i)
			steps := []struct {
				args []string
				want string
			}{
				{[]string{"SET", k, "1"}, "+OK\r\n"},
				{[]string{"MULTI"}, "+OK\r\n"},
				{[]string{"INCR", k}, "+QUEUED\r\n"},
				{[]string{"EXEC"}, "*1\r\n:2\r\n"},
				{[]string{"GET", k}, proxytest.Bulk("2")},
				{[]string{"WATCH", k}, "+OK\r\n"},
				{[]string{"UNWATCH"}, "+OK\r\n"},
				{[]string{"BLPOP", q, "0.05"}, "*-1\r\n"},
				{[]string{"RPUSH", q, "x"}, ":1\r\n"},
				{[]string{"BLPOP", q, "1"}, "*2\r\n" + proxytest.Bulk(q) + proxytest.Bulk("x")},
				{[]string{"SUBSCRIBE", k}, "*3\r\n$9\r\nsubscribe\r\n" + proxytest.Bulk(k) + ":1\r\n"},
				{[]string{"UNSUBSCRIBE", k}, "*3\r\n$11\r\nunsubscribe\r\n" + proxytest.Bulk(k) + ":0\r\n"},
				{[]string{"GET", k}, proxytest.Bulk("2")},
			}
			for _, st := range steps {
				if got := c.Do(st.args...); got != st.want {
					errs <- fmt.Errorf("client %d %v: %q, want %q", i, st.args, got, st.want)
					return
				}
			}
			// A pipeline mixing loop requests and a transaction.
			var req []byte
			req = proxytest.EncodeCommand(req, "INCR", k)
			req = proxytest.EncodeCommand(req, "MULTI")
			req = proxytest.EncodeCommand(req, "INCR", k)
			req = proxytest.EncodeCommand(req, "EXEC")
			req = proxytest.EncodeCommand(req, "GET", k)
			c.Write(req)
			for _, want := range []string{":3\r\n", "+OK\r\n", "+QUEUED\r\n", "*1\r\n:4\r\n", proxytest.Bulk("4")} {
				if got := c.Read(); got != want {
					errs <- fmt.Errorf("client %d pipeline: %q, want %q", i, got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	proxytest.WaitStat(t, px, "client_parked", n)
	idle := runtime.NumGoroutine()
	for deadline := time.Now().Add(3 * time.Second); idle >= before+n/2 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		idle = runtime.NumGoroutine()
	}
	if idle >= before+n/2 {
		t.Errorf("%d goroutines with %d clients back in their loops, %d before they came", idle, n, before)
	}
	for i, c := range conns {
		if got := c.Do("PING"); got != "+PONG\r\n" {
			t.Fatalf("client %d after: %q", i, got)
		}
	}
}
