package proxy_test

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/proxy"
)

// TestParkIdleClients checks client_park_after: idle clients give up their
// goroutines, come back on their next request (whole, split across the
// parking, or pipelined), and leaving while parked is noticed.
func TestParkIdleClients(t *testing.T) {
	backends := startRedisBackends(t, 2)
	px := startProxyOpts(t, poolYAML(freeListen(t), backends, "client_park_after: 50"),
		proxy.Options{StatsAddr: "127.0.0.1:0"})
	addr := px.Addr(0).String()
	const n = 40
	conns := make([]*clientConn, n)
	for i := range conns {
		conns[i] = dialClient(t, addr)
		if got := conns[i].do("PING"); got != "+PONG\r\n" {
			t.Fatalf("client %d: %q", i, got)
		}
	}
	busy := runtime.NumGoroutine()
	waitStat(t, px, "client_parked", n)
	// Other goroutines come and go (a trim, a connection's writer ending):
	// wait a little for the count to settle at n fewer.
	idle := runtime.NumGoroutine()
	for deadline := time.Now().Add(2 * time.Second); idle > busy-n && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		idle = runtime.NumGoroutine()
	}
	if idle > busy-n {
		t.Errorf("%d goroutines with %d clients parked, %d before", idle, n, busy)
	}

	// Every client comes back with a pipeline.
	for i, rc := range conns {
		key := fmt.Sprintf("park:%d", i)
		rc.write(encodeCommand(encodeCommand(nil, "SET", key, fmt.Sprint(i)), "GET", key))
		if got := rc.read(); got != "+OK\r\n" {
			t.Fatalf("client %d SET after parking: %q", i, got)
		}
		if got, want := rc.read(), bulk(fmt.Sprint(i)); got != want {
			t.Fatalf("client %d GET after parking: %q, want %q", i, got, want)
		}
	}
	waitStat(t, px, "client_parked", n)

	// Half a request, a pause past client_park_after, the other half:
	// the client holds a partial request and must not park.
	rc := conns[0]
	req := encodeCommand(nil, "GET", "park:0")
	rc.write(req[:7])
	time.Sleep(200 * time.Millisecond)
	rc.write(req[7:])
	if got := rc.read(); got != bulk("0") {
		t.Fatalf("split GET across the park time: %q", got)
	}

	// Clients leaving while parked are closed and counted.
	waitStat(t, px, "client_parked", n)
	for _, rc := range conns[:10] {
		rc.nc.Close()
	}
	waitStat(t, px, "client_connections", n-10)
	waitStat(t, px, "client_parked", n-10)
	for i, rc := range conns[10:] {
		if got := rc.do("PING"); got != "+PONG\r\n" {
			t.Fatalf("client %d after others left: %q", i+10, got)
		}
	}
}

// TestParkChurn has clients pause for about client_park_after between
// requests, so that requests race with parking; every reply must be right.
func TestParkChurn(t *testing.T) {
	backends := startRedisBackends(t, 2)
	px := startProxyOpts(t, poolYAML(freeListen(t), backends, "client_park_after: 20"),
		proxy.Options{StatsAddr: "127.0.0.1:0"})
	addr := px.Addr(0).String()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for c := range 32 {
		rc := dialClient(t, addr)
		wg.Go(func() {
			for i := range 25 {
				key := fmt.Sprintf("churn:%d", c)
				val := fmt.Sprint(i)
				rc.write(encodeCommand(encodeCommand(nil, "SET", key, val), "GET", key))
				if got := rc.read(); got != "+OK\r\n" {
					errs <- fmt.Errorf("client %d round %d SET: %q", c, i, got)
					return
				}
				if got := rc.read(); got != bulk(val) {
					errs <- fmt.Errorf("client %d round %d GET: %q", c, i, got)
					return
				}
				time.Sleep(time.Duration(15+rand.IntN(10)) * time.Millisecond)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := poolStat(t, px, "client_connections"); got != 32 {
		t.Errorf("client_connections %d, want 32", got)
	}
}

// TestParkIdleTimeout checks that parked clients still meet
// client_idle_timeout, and that a client busy every so often (parking in
// between) does not.
func TestParkIdleTimeout(t *testing.T) {
	backends := startRedisBackends(t, 1)
	px := startProxyOpts(t, poolYAML(freeListen(t), backends, "client_park_after: 50", "client_idle_timeout: 400"),
		proxy.Options{StatsAddr: "127.0.0.1:0"})
	addr := px.Addr(0).String()
	idle, busy := dialClient(t, addr), dialClient(t, addr)
	if got := idle.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("idle client: %q", got)
	}
	start := time.Now()
	closed := make(chan error, 1)
	var closedAfter time.Duration
	go func() {
		idle.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := idle.r.ReadByte()
		closedAfter = time.Since(start)
		closed <- err
	}()
	for i := 0; i < 10; i++ {
		time.Sleep(150 * time.Millisecond)
		if got := busy.do("PING"); got != "+PONG\r\n" {
			t.Fatalf("busy client after %v: %q", time.Since(start), got)
		}
	}
	select {
	case err := <-closed:
		if err != io.EOF && !isReset(err) {
			t.Fatalf("idle client: want closed, got %v", err)
		}
		if closedAfter < 350*time.Millisecond {
			t.Errorf("idle client closed after %v, before client_idle_timeout", closedAfter)
		}
	default:
		t.Fatalf("idle client still open after %v", time.Since(start))
	}
}

// TestParkClose checks that closing the proxy closes parked clients.
func TestParkClose(t *testing.T) {
	backends := startRedisBackends(t, 1)
	cfgYAML := poolYAML(freeListen(t), backends, "client_park_after: 20")
	var logs lockedBuffer
	px := startProxyOpts(t, cfgYAML, proxy.Options{StatsAddr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	rc := dialClient(t, px.Addr(0).String())
	if got := rc.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING: %q", got)
	}
	waitStat(t, px, "client_parked", 1)
	if err := px.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	rc.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := rc.r.ReadByte(); err != io.EOF && !isReset(err) {
		t.Fatalf("parked client after Close: want closed, got %v", err)
	}
	// Closing is no failure of the parker's epoll set.
	if l := logs.String(); strings.Contains(l, "level=ERROR") {
		t.Fatalf("errors logged by a clean shutdown:\n%s", l)
	}
}

// lockedBuffer is a bytes.Buffer for a logger that many goroutines use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestParkUnixAndMemcache checks parking for a unix-socket listener and for
// a memcache pool: the client parks, and its next requests are answered.
func TestParkUnixAndMemcache(t *testing.T) {
	t.Run("unix", func(t *testing.T) {
		backends := startRedisBackends(t, 1)
		path := filepath.Join(t.TempDir(), "p.sock")
		px := startProxyOpts(t, poolYAML(path, backends, "client_park_after: 20"), proxy.Options{StatsAddr: "127.0.0.1:0"})
		nc, err := net.DialTimeout("unix", path, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		rc := newClientConn(t, nc)
		for i := range 3 {
			if got := rc.do("SET", "park:unix", fmt.Sprint(i)); got != "+OK\r\n" {
				t.Fatalf("SET %d: %q", i, got)
			}
			waitStat(t, px, "client_parked", 1)
			if got := rc.do("GET", "park:unix"); got != bulk(fmt.Sprint(i)) {
				t.Fatalf("GET %d after parking: %q", i, got)
			}
		}
	})
	t.Run("memcache", func(t *testing.T) {
		backends := startMemcacheBackends(t, 1)
		p := pool{memcache: true, keys: []string{"client_park_after: 20"}, servers: serverLines(backends, nil, nil)}
		yaml := p.yaml("alpha", freeListen(t))
		px := startProxyOpts(t, yaml, proxy.Options{StatsAddr: "127.0.0.1:0"})
		c := dialClient(t, px.Addr(0).String())
		for i := range 3 {
			if got := c.roundTrip(fmt.Sprintf("set park:mc 0 0 1\r\n%d\r\n", i)); got != "STORED\r\n" {
				t.Fatalf("set %d: %q", i, got)
			}
			waitStat(t, px, "client_parked", 1)
			if got, want := c.roundTrip("get park:mc\r\n"), fmt.Sprintf("VALUE park:mc 0 1\r\n%d\r\nEND\r\n", i); got != want {
				t.Fatalf("get %d after parking: %q, want %q", i, got, want)
			}
		}
	})
}

// TestIdleClientsHoldNoBuffer checks that buffers belong to clients with a
// request in hand: idle TLS clients (which cannot park) and idle plain
// clients that keep their goroutine hold none, a client mid-request holds
// one, and requests split across TLS records or pipelined in one still
// come through whole.
func TestIdleClientsHoldNoBuffer(t *testing.T) {
	pki := newPKI(t, "proxy")
	backends := startRedisBackends(t, 2)
	for _, tc := range []struct {
		name string
		keys []string
		dial func(addr string) (net.Conn, error)
	}{
		{"tls", []string{"tls_cert_file: " + pki.ServerCert, "tls_key_file: " + pki.ServerKey},
			func(addr string) (net.Conn, error) { return tls.Dial("tcp", addr, pki.clientConfig(false)) }},
		{"plain", []string{"client_park_after: 0"},
			func(addr string) (net.Conn, error) { return net.Dial("tcp", addr) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			px := startProxyOpts(t, poolYAML(freeListen(t), backends, tc.keys...), proxy.Options{StatsAddr: "127.0.0.1:0"})
			addr := px.Addr(0).String()
			const n = 20
			conns := make([]*clientConn, n)
			for i := range conns {
				nc, err := tc.dial(addr)
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				t.Cleanup(func() { nc.Close() })
				nc.SetDeadline(time.Now().Add(10 * time.Second))
				conns[i] = newClientConn(t, nc)
				if got := conns[i].do("SET", "idle:"+strconv.Itoa(i), "v"+strconv.Itoa(i)); got != "+OK\r\n" {
					t.Fatalf("client %d: SET: %q", i, got)
				}
			}
			waitStat(t, px, "client_buffered", 0)

			// A request in pieces: the client holds a buffer until it
			// is whole (each write is a TLS record of its own).
			c := conns[3]
			io.WriteString(c.nc, "*2\r\n$3\r\nGET\r\n$6\r")
			waitStat(t, px, "client_buffered", 1)
			io.WriteString(c.nc, "\nidle:3\r\n")
			if got := c.read(); got != "$2\r\nv3\r\n" {
				t.Fatalf("GET split across writes: %q", got)
			}
			// A single byte first, then the rest.
			io.WriteString(c.nc, "*")
			time.Sleep(20 * time.Millisecond)
			io.WriteString(c.nc, "1\r\n$4\r\nPING\r\n")
			if got := c.read(); got != "+PONG\r\n" {
				t.Fatalf("PING after a lone byte: %q", got)
			}
			// Three requests in one write.
			io.WriteString(c.nc, "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$6\r\nidle:4\r\n*1\r\n$4\r\nPING\r\n")
			for _, want := range []string{"+PONG\r\n", "$2\r\nv4\r\n", "+PONG\r\n"} {
				if got := c.read(); got != want {
					t.Fatalf("pipelined: %q, want %q", got, want)
				}
			}
			waitStat(t, px, "client_buffered", 0)
			if got := poolStat(t, px, "client_connections"); got != n {
				t.Fatalf("client_connections %d, want %d: the idle clients must stay connected", got, n)
			}
		})
	}
}
