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

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/proxy"
)

// TestParkIdleClients checks that plain clients are served by the event
// loops (no goroutine each, parked between requests), come back on their
// next request (whole, split across a pause, or pipelined), and that
// leaving while parked is noticed.
func TestParkIdleClients(t *testing.T) {
	backends := proxytest.StartRedisBackends(t, 2)
	px := proxytest.StartProxyOpts(t, proxytest.PoolYAML(proxytest.FreeListen(t), backends, "client_park_after: 50"),
		proxy.Options{StatsAddr: "127.0.0.1:0"})
	addr := px.Addr(0).String()
	const n = 40
	before := runtime.NumGoroutine()
	conns := make([]*proxytest.Conn, n)
	for i := range conns {
		conns[i] = proxytest.Dial(t, addr)
		if got := conns[i].Do("PING"); got != "+PONG\r\n" {
			t.Fatalf("client %d: %q", i, got)
		}
	}
	proxytest.WaitStat(t, px, "client_parked", n)
	// Other goroutines come and go (a trim, a connection's writer ending):
	// wait a little for the count to settle.
	idle := runtime.NumGoroutine()
	for deadline := time.Now().Add(2 * time.Second); idle >= before+n/2 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		idle = runtime.NumGoroutine()
	}
	if idle >= before+n/2 {
		t.Errorf("%d goroutines with %d clients parked, %d before they came", idle, n, before)
	}

	// Every client comes back with a pipeline.
	for i, rc := range conns {
		key := fmt.Sprintf("park:%d", i)
		rc.Write(proxytest.EncodeCommand(proxytest.EncodeCommand(nil, "SET", key, fmt.Sprint(i)), "GET", key))
		if got := rc.Read(); got != "+OK\r\n" {
			t.Fatalf("client %d SET after parking: %q", i, got)
		}
		if got, want := rc.Read(), proxytest.Bulk(fmt.Sprint(i)); got != want {
			t.Fatalf("client %d GET after parking: %q, want %q", i, got, want)
		}
	}
	proxytest.WaitStat(t, px, "client_parked", n)

	// Half a request, a pause past client_park_after, the other half:
	// the client holds a partial request and must not park.
	rc := conns[0]
	req := proxytest.EncodeCommand(nil, "GET", "park:0")
	rc.Write(req[:7])
	time.Sleep(200 * time.Millisecond)
	rc.Write(req[7:])
	if got := rc.Read(); got != proxytest.Bulk("0") {
		t.Fatalf("split GET across the park time: %q", got)
	}

	// Clients leaving while parked are closed and counted.
	proxytest.WaitStat(t, px, "client_parked", n)
	for _, rc := range conns[:10] {
		rc.Net.Close()
	}
	proxytest.WaitStat(t, px, "client_connections", n-10)
	proxytest.WaitStat(t, px, "client_parked", n-10)
	for i, rc := range conns[10:] {
		if got := rc.Do("PING"); got != "+PONG\r\n" {
			t.Fatalf("client %d after others left: %q", i+10, got)
		}
	}
}

// TestParkChurn has clients pause for about client_park_after between
// requests, so that requests race with parking; every reply must be right.
func TestParkChurn(t *testing.T) {
	backends := proxytest.StartRedisBackends(t, 2)
	px := proxytest.StartProxyOpts(t, proxytest.PoolYAML(proxytest.FreeListen(t), backends, "client_park_after: 20"),
		proxy.Options{StatsAddr: "127.0.0.1:0"})
	addr := px.Addr(0).String()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for c := range 32 {
		rc := proxytest.Dial(t, addr)
		wg.Go(func() {
			for i := range 25 {
				key := fmt.Sprintf("churn:%d", c)
				val := fmt.Sprint(i)
				rc.Write(proxytest.EncodeCommand(proxytest.EncodeCommand(nil, "SET", key, val), "GET", key))
				if got := rc.Read(); got != "+OK\r\n" {
					errs <- fmt.Errorf("client %d round %d SET: %q", c, i, got)
					return
				}
				if got := rc.Read(); got != proxytest.Bulk(val) {
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
	if got := proxytest.PoolStat(t, px, "client_connections"); got != 32 {
		t.Errorf("client_connections %d, want 32", got)
	}
}

// TestParkIdleTimeout checks that parked clients still meet
// client_idle_timeout, and that a client busy every so often (parking in
// between) does not.
func TestParkIdleTimeout(t *testing.T) {
	backends := proxytest.StartRedisBackends(t, 1)
	px := proxytest.StartProxyOpts(t, proxytest.PoolYAML(proxytest.FreeListen(t), backends, "client_park_after: 50", "client_idle_timeout: 400"),
		proxy.Options{StatsAddr: "127.0.0.1:0"})
	addr := px.Addr(0).String()
	idle, busy := proxytest.Dial(t, addr), proxytest.Dial(t, addr)
	if got := idle.Do("PING"); got != "+PONG\r\n" {
		t.Fatalf("idle client: %q", got)
	}
	start := time.Now()
	closed := make(chan error, 1)
	var closedAfter time.Duration
	go func() {
		idle.Net.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := idle.R.ReadByte()
		closedAfter = time.Since(start)
		closed <- err
	}()
	for i := 0; i < 10; i++ {
		time.Sleep(150 * time.Millisecond)
		if got := busy.Do("PING"); got != "+PONG\r\n" {
			t.Fatalf("busy client after %v: %q", time.Since(start), got)
		}
	}
	select {
	case err := <-closed:
		if err != io.EOF && !proxytest.IsReset(err) {
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
	backends := proxytest.StartRedisBackends(t, 1)
	cfgYAML := proxytest.PoolYAML(proxytest.FreeListen(t), backends, "client_park_after: 20")
	var logs lockedBuffer
	px := proxytest.StartProxyOpts(t, cfgYAML, proxy.Options{StatsAddr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	rc := proxytest.Dial(t, px.Addr(0).String())
	if got := rc.Do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING: %q", got)
	}
	proxytest.WaitStat(t, px, "client_parked", 1)
	if err := px.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	rc.Net.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := rc.R.ReadByte(); err != io.EOF && !proxytest.IsReset(err) {
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
		backends := proxytest.StartRedisBackends(t, 1)
		path := filepath.Join(t.TempDir(), "p.sock")
		px := proxytest.StartProxyOpts(t, proxytest.PoolYAML(path, backends, "client_park_after: 20"), proxy.Options{StatsAddr: "127.0.0.1:0"})
		nc, err := net.DialTimeout("unix", path, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		rc := proxytest.NewConn(t, nc)
		for i := range 3 {
			if got := rc.Do("SET", "park:unix", fmt.Sprint(i)); got != "+OK\r\n" {
				t.Fatalf("SET %d: %q", i, got)
			}
			proxytest.WaitStat(t, px, "client_parked", 1)
			if got := rc.Do("GET", "park:unix"); got != proxytest.Bulk(fmt.Sprint(i)) {
				t.Fatalf("GET %d after parking: %q", i, got)
			}
		}
	})
	t.Run("memcache", func(t *testing.T) {
		backends := proxytest.StartMemcacheBackends(t, 1)
		p := proxytest.Pool{Memcache: true, Keys: []string{"client_park_after: 20"}, Servers: proxytest.ServerLines(backends, nil, nil)}
		yaml := p.YAML("alpha", proxytest.FreeListen(t))
		px := proxytest.StartProxyOpts(t, yaml, proxy.Options{StatsAddr: "127.0.0.1:0"})
		c := proxytest.Dial(t, px.Addr(0).String())
		for i := range 3 {
			if got := c.RoundTrip(fmt.Sprintf("set park:mc 0 0 1\r\n%d\r\n", i)); got != "STORED\r\n" {
				t.Fatalf("set %d: %q", i, got)
			}
			proxytest.WaitStat(t, px, "client_parked", 1)
			if got, want := c.RoundTrip("get park:mc\r\n"), fmt.Sprintf("VALUE park:mc 0 1\r\n%d\r\nEND\r\n", i); got != want {
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
	pki := proxytest.NewPKI(t, "proxy")
	backends := proxytest.StartRedisBackends(t, 2)
	for _, tc := range []struct {
		name string
		keys []string
		dial func(addr string) (net.Conn, error)
	}{
		{"tls", []string{"tls_cert_file: " + pki.ServerCert, "tls_key_file: " + pki.ServerKey},
			func(addr string) (net.Conn, error) { return tls.Dial("tcp", addr, pki.ClientConfig(false)) }},
		{"plain", []string{"client_park_after: 0"},
			func(addr string) (net.Conn, error) { return net.Dial("tcp", addr) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			px := proxytest.StartProxyOpts(t, proxytest.PoolYAML(proxytest.FreeListen(t), backends, tc.keys...), proxy.Options{StatsAddr: "127.0.0.1:0"})
			addr := px.Addr(0).String()
			const n = 20
			conns := make([]*proxytest.Conn, n)
			for i := range conns {
				nc, err := tc.dial(addr)
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				t.Cleanup(func() { nc.Close() })
				nc.SetDeadline(time.Now().Add(10 * time.Second))
				conns[i] = proxytest.NewConn(t, nc)
				if got := conns[i].Do("SET", "idle:"+strconv.Itoa(i), "v"+strconv.Itoa(i)); got != "+OK\r\n" {
					t.Fatalf("client %d: SET: %q", i, got)
				}
			}
			proxytest.WaitStat(t, px, "client_buffered", 0)

			// A request in pieces: the client holds a buffer until it
			// is whole (each write is a TLS record of its own).
			c := conns[3]
			io.WriteString(c.Net, "*2\r\n$3\r\nGET\r\n$6\r")
			proxytest.WaitStat(t, px, "client_buffered", 1)
			io.WriteString(c.Net, "\nidle:3\r\n")
			if got := c.Read(); got != "$2\r\nv3\r\n" {
				t.Fatalf("GET split across writes: %q", got)
			}
			// A single byte first, then the rest.
			io.WriteString(c.Net, "*")
			time.Sleep(20 * time.Millisecond)
			io.WriteString(c.Net, "1\r\n$4\r\nPING\r\n")
			if got := c.Read(); got != "+PONG\r\n" {
				t.Fatalf("PING after a lone byte: %q", got)
			}
			// Three requests in one write.
			io.WriteString(c.Net, "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$6\r\nidle:4\r\n*1\r\n$4\r\nPING\r\n")
			for _, want := range []string{"+PONG\r\n", "$2\r\nv4\r\n", "+PONG\r\n"} {
				if got := c.Read(); got != want {
					t.Fatalf("pipelined: %q, want %q", got, want)
				}
			}
			proxytest.WaitStat(t, px, "client_buffered", 0)
			if got := proxytest.PoolStat(t, px, "client_connections"); got != n {
				t.Fatalf("client_connections %d, want %d: the idle clients must stay connected", got, n)
			}
		})
	}
}
