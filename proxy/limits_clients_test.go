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
)

// TestLimitClientConnections checks client_connections: the client over
// the limit gets an error and is closed; the others keep working, and a
// place freed is taken again.
func TestLimitClientConnections(t *testing.T) {
	backends := startRedisBackends(t, 2)
	px := startProxy(t, poolYAML(freeListen(t), backends, "client_connections: 3"))
	addr := px.Addr(0).String()
	var conns []*clientConn
	for i := 0; i < 3; i++ {
		rc := dialClient(t, addr)
		if got := rc.do("PING"); got != "+PONG\r\n" {
			t.Fatalf("client %d: %q", i+1, got)
		}
		conns = append(conns, rc)
	}
	fourth := dialClient(t, addr)
	if got := fourth.read(); got != "-ERR max number of clients reached\r\n" {
		t.Fatalf("fourth client: %q", got)
	}
	fourth.expectClosed()
	for i, rc := range conns {
		if got := rc.do("INCR", "clients:n"); got != ":"+strconv.Itoa(i+1)+"\r\n" {
			t.Errorf("client %d after the refusal: %q", i+1, got)
		}
	}
	conns[0].nc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		rc := dialClient(t, addr)
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
func readReplyAfter(rc *clientConn, args ...string) (string, error) {
	rc.write(encodeCommand(nil, args...))
	rep, err := readReply(rc.r)
	return rep.raw, err
}

// TestLimitIdleClient checks client_idle_timeout: a silent client is
// closed after it, a busy one is not.
func TestLimitIdleClient(t *testing.T) {
	backends := startRedisBackends(t, 1)
	px := startProxy(t, poolYAML(freeListen(t), backends, "client_idle_timeout: 200"))
	addr := px.Addr(0).String()
	idle, busy := dialClient(t, addr), dialClient(t, addr)
	if got := idle.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("idle client: %q", got)
	}
	start := time.Now()
	for i := 0; i < 8; i++ {
		time.Sleep(100 * time.Millisecond)
		if got := busy.do("PING"); got != "+PONG\r\n" {
			t.Fatalf("busy client after %v: %q", time.Since(start), got)
		}
	}
	idle.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.r.ReadByte(); err != io.EOF && !isReset(err) {
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
	backends := startRedisBackends(t, 2)
	px := startProxy(t, poolYAML(freeListen(t), backends, "client_write_timeout: 500",
		fmt.Sprintf("client_output_limit: %d", outputLimit)))
	addr := px.Addr(0).String()
	other := dialClient(t, addr)
	value := strings.Repeat("v", 100<<10)
	if got := other.do("SET", "slow:big", value); got != "+OK\r\n" {
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
			before := limHeap()
			peak := limWatchHeap(t)
			slow := dialClient(t, addr)
			var req []byte
			for i := 0; i < tc.gets; i++ {
				req = encodeCommand(req, "GET", "slow:big")
			}
			start := time.Now()
			go slow.nc.Write(req) // never read: the proxy must give up on us
			var cut time.Duration
			for cut == 0 {
				if got := other.do("GET", "slow:big"); got != bulk(value) {
					t.Fatalf("other client after %v: %d bytes", time.Since(start), len(got))
				}
				if n := limClients(t, other); n == 1 {
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

// limClients returns the pool's client_connections from INFO.
func limClients(t *testing.T, rc *clientConn) int {
	t.Helper()
	info := rc.do("INFO")
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

// limWatchHeap samples HeapAlloc every 10 ms until the test ends; the
// returned function gives the highest value seen so far.
func limWatchHeap(t *testing.T) func() uint64 {
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
