package proxy_test

import (
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/proxy"
)

// TestLimitClientConnections checks client_connections: the client over
// the limit gets an error and is closed; the others keep working, and a
// place freed is taken again.
func TestLimitClientConnections(t *testing.T) {
	backends := proxytest.StartRedisBackends(t, 2)
	px := proxytest.StartProxy(t, proxytest.PoolYAML(proxytest.FreeListen(t), backends, "client_connections: 3"))
	addr := px.Addr(0).String()
	var conns []*proxytest.Conn
	for i := 0; i < 3; i++ {
		rc := proxytest.Dial(t, addr)
		if got := rc.Do("PING"); got != "+PONG\r\n" {
			t.Fatalf("client %d: %q", i+1, got)
		}
		conns = append(conns, rc)
	}
	fourth := proxytest.Dial(t, addr)
	if got := fourth.Read(); got != "-ERR max number of clients reached\r\n" {
		t.Fatalf("fourth client: %q", got)
	}
	fourth.ExpectClosed()
	for i, rc := range conns {
		if got := rc.Do("INCR", "clients:n"); got != ":"+strconv.Itoa(i+1)+"\r\n" {
			t.Errorf("client %d after the refusal: %q", i+1, got)
		}
	}
	conns[0].Net.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		rc := proxytest.Dial(t, addr)
		got, err := readReplyAfter(rc, "PING")
		if err == nil && got == "+PONG\r\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no place freed 5 s after a client left: %q %v", got, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readReplyAfter sends a command and returns its reply or the read error.
func readReplyAfter(rc *proxytest.Conn, args ...string) (string, error) {
	rc.Write(proxytest.EncodeCommand(nil, args...))
	rep, err := proxytest.ReadReply(rc.R)
	return rep.Raw, err
}

// TestLimitIdleClient checks client_idle_timeout: a silent client is
// closed after it, a busy one is not.
func TestLimitIdleClient(t *testing.T) {
	backends := proxytest.StartRedisBackends(t, 1)
	px := proxytest.StartProxy(t, proxytest.PoolYAML(proxytest.FreeListen(t), backends, "client_idle_timeout: 200"))
	addr := px.Addr(0).String()
	idle, busy := proxytest.Dial(t, addr), proxytest.Dial(t, addr)
	if got := idle.Do("PING"); got != "+PONG\r\n" {
		t.Fatalf("idle client: %q", got)
	}
	start := time.Now()
	for i := 0; i < 8; i++ {
		time.Sleep(100 * time.Millisecond)
		if got := busy.Do("PING"); got != "+PONG\r\n" {
			t.Fatalf("busy client after %v: %q", time.Since(start), got)
		}
	}
	idle.Net.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.R.ReadByte(); err != io.EOF && !proxytest.IsReset(err) {
		t.Fatalf("idle client after %v: want closed, got %v", time.Since(start), err)
	}
	if since := time.Since(start); since < 200*time.Millisecond {
		t.Errorf("idle client closed after %v, before client_idle_timeout", since)
	}
}

// TestLimitSlowReader checks the bounds on a client that never reads its
// replies, while another client keeps working and the heap stays bounded:
// with more unread replies than client_output_limit (10,000 GETs of a 100
// KB value, 1 GB of replies) it is cut off once it holds the limit; with
// fewer (200 GETs) its replies wait and it is cut off after
// client_write_timeout.
func TestLimitSlowReader(t *testing.T) {
	const writeTimeout = 500 * time.Millisecond
	const outputLimit = 32 << 20
	backends := proxytest.StartRedisBackends(t, 2)
	px := proxytest.StartProxy(t, proxytest.PoolYAML(proxytest.FreeListen(t), backends, "client_write_timeout: 500",
		fmt.Sprintf("client_output_limit: %d", outputLimit)))
	addr := px.Addr(0).String()
	other := proxytest.Dial(t, addr)
	value := strings.Repeat("v", 100<<10)
	if got := other.Do("SET", "slow:big", value); got != "+OK\r\n" {
		t.Fatalf("SET: %q", got)
	}
	for _, tc := range []struct {
		name     string
		gets     int
		minDelay time.Duration
	}{
		{"over client_output_limit", 10000, 0},
		{"under client_output_limit", 200, writeTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := liveHeap()
			peak := watchHeapPeak(t)
			slow := proxytest.Dial(t, addr)
			var req []byte
			for i := 0; i < tc.gets; i++ {
				req = proxytest.EncodeCommand(req, "GET", "slow:big")
			}
			start := time.Now()
			go slow.Net.Write(req) // never read: the proxy must give up on us
			var cut time.Duration
			for cut == 0 {
				if got := other.Do("GET", "slow:big"); got != proxytest.Bulk(value) {
					t.Fatalf("other client after %v: %d bytes", time.Since(start), len(got))
				}
				if n := infoClients(t, other); n == 1 {
					cut = time.Since(start)
				} else if time.Since(start) > 10*time.Second {
					t.Fatalf("slow reader still connected after %v (%d clients)", time.Since(start), n)
				}
				time.Sleep(20 * time.Millisecond)
			}
			grown := int64(peak()) - int64(before)
			t.Logf("slow reader cut off after %v; heap peak %d MB over the start", cut.Round(time.Millisecond), grown>>20)
			if cut < tc.minDelay {
				t.Errorf("slow reader cut off after %v, before client_write_timeout", cut)
			}
			// A client holds one batch of replies (512 of them, each
			// 100 KB in a 128 KB buffer) besides what waits in its
			// output queue.
			if grown > outputLimit+128<<20 {
				t.Errorf("heap grew by %d MB for one slow reader (client_output_limit %d MB)", grown>>20, outputLimit>>20)
			}
		})
	}
}

// infoClients returns the pool's client_connections from INFO.
func infoClients(t *testing.T, rc *proxytest.Conn) int {
	t.Helper()
	info := rc.Do("INFO")
	_, rest, ok := strings.Cut(info, "client_connections:")
	if !ok {
		t.Fatalf("INFO has no client_connections: %q", info)
	}
	n, err := strconv.Atoi(rest[:strings.IndexByte(rest, '\r')])
	if err != nil {
		t.Fatalf("INFO client_connections: %v", err)
	}
	return n
}

// watchHeapPeak samples HeapAlloc every 10 ms until the test ends; the
// returned function gives the highest value seen so far.
func watchHeapPeak(t *testing.T) func() uint64 {
	var mu sync.Mutex
	var peak uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			mu.Lock()
			peak = max(peak, m.HeapAlloc)
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	return func() uint64 {
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// TestClientOutputLimit: a client holding more unread replies than
// client_output_limit is closed, counted in client_overflow, and other
// clients of the pool do not notice.
func TestClientOutputLimit(t *testing.T) {
	backends := proxytest.StartRedisBackends(t, 2)
	listen := proxytest.FreeListen(t)
	yaml := proxytest.PoolYAML(listen, backends, "client_output_limit: 1048576")
	px := proxytest.StartProxyOpts(t, yaml, proxy.Options{StatsAddr: "127.0.0.1:0"})
	setup := proxytest.Dial(t, listen)
	value := strings.Repeat("v", 1000)
	for i := 0; i < 100; i++ {
		setup.Do("SET", fmt.Sprintf("key:%d", i), value)
	}

	// Another client works all along.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var otherErr error
	var otherN int
	wg.Add(1)
	go func() {
		defer wg.Done()
		rc := proxytest.Dial(t, listen)
		for {
			select {
			case <-stop:
				return
			default:
			}
			k := fmt.Sprintf("other:%d", otherN)
			if got := rc.Do("SET", k, "x"); got != "+OK\r\n" {
				otherErr = fmt.Errorf("SET %s: %q", k, got)
				return
			}
			if got := rc.Do("GET", k); got != proxytest.Bulk("x") {
				otherErr = fmt.Errorf("GET %s: %q", k, got)
				return
			}
			otherN++
		}
	}()

	// 20,000 GETs of 1 KB: 20 MB of replies, far over the 1 MB limit.
	c := proxytest.DialNet(t, listen)
	defer c.Close()
	werr := make(chan error, 1)
	go func() { werr <- unreadPipeline(c, 20000, 100) }()
	select {
	case <-werr:
	case <-time.After(30 * time.Second):
		t.Fatal("the pipeline's write still blocks after 30 s: the client was not closed")
	}
	// The client reads nothing until the proxy has given up on it.
	deadline := time.Now().Add(20 * time.Second)
	for proxytest.PoolStat(t, px, "client_overflow") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("client_overflow still 0 after 20 s of a client not reading 20 MB of replies")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// What the client reads ends: it was closed.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	read, err := io.Copy(io.Discard, c)
	if err != nil && !proxytest.IsReset(err) {
		t.Fatalf("reading the closed client: %v after %d bytes", err, read)
	}
	if read >= 20000*1000 {
		t.Fatalf("the client read all %d bytes of replies; it should have been closed", read)
	}
	close(stop)
	wg.Wait()
	if otherErr != nil {
		t.Fatalf("another client noticed: %v", otherErr)
	}
	if otherN == 0 {
		t.Fatal("the other client made no progress")
	}
	if got := proxytest.PoolStat(t, px, "client_overflow"); got != 1 {
		t.Fatalf("client_overflow = %v, want 1", got)
	}
	t.Logf("closed after %d bytes of replies; the other client did %d SET+GET meanwhile", read, otherN)
}
