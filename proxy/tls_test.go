package proxy_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/proxy"
)

// timeoutContext returns a context that ends after 10 s, or with the test.
func timeoutContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestTLSClients checks the TLS listener: go-redis over TLS sets, gets and
// splits MGET over three servers; a plain-TCP client gets nothing usable
// and the proxy keeps serving.
func TestTLSClients(t *testing.T) {
	pki := proxytest.NewPKI(t, "proxy")
	backends := proxytest.StartRedisBackends(t, 3)
	px := proxytest.StartProxy(t, proxytest.PoolYAML(proxytest.FreeListen(t), backends, "tls_cert_file: "+pki.ServerCert, "tls_key_file: "+pki.ServerKey))
	addr := px.Addr(0).String()
	ctx := timeoutContext(t)
	c := proxytest.NoRetryClient(t, addr, pki.ClientConfig(false), 0)
	var keys []string
	for i := 0; i < 30; i++ {
		k := strconv.Itoa(i) + ":tls"
		keys = append(keys, k)
		if err := c.Set(ctx, k, "v"+strconv.Itoa(i), 0).Err(); err != nil {
			t.Fatalf("SET %s over TLS: %v", k, err)
		}
	}
	if v, err := c.Get(ctx, "7:tls").Result(); err != nil || v != "v7" {
		t.Fatalf("GET over TLS: %q %v", v, err)
	}
	vals, err := c.MGet(ctx, keys...).Result()
	if err != nil {
		t.Fatalf("MGET over TLS: %v", err)
	}
	for i, v := range vals {
		if v != "v"+strconv.Itoa(i) {
			t.Errorf("MGET value %d: %v", i, v)
		}
	}
	holding := 0
	for _, b := range backends {
		if proxytest.Dbsize(t, b.Addr) > 0 {
			holding++
		}
	}
	if holding < 2 {
		t.Errorf("the keys live on %d backend(s): MGET was not split", holding)
	}

	plain := proxytest.Dial(t, addr)
	plain.Write(proxytest.EncodeCommand(nil, "PING"))
	plain.Net.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(plain.R)
	if err != nil && !proxytest.IsReset(err) {
		t.Errorf("plain client on the TLS port: want the connection closed, got %v", err)
	}
	if strings.Contains(string(got), "PONG") || strings.HasPrefix(string(got), "+") {
		t.Errorf("plain client on the TLS port got a RESP reply: %q", got)
	}
	if v, err := c.Get(ctx, "1:tls").Result(); err != nil || v != "v1" {
		t.Errorf("TLS client after the plain one: %q %v", v, err)
	}
	if err := proxytest.NoRetryClient(t, addr, pki.ClientConfig(false), 0).Ping(ctx).Err(); err != nil {
		t.Errorf("new TLS client after the plain one: %v", err)
	}
}

// TestTLSClientCertificates checks tls_client_ca_file: only clients with a
// certificate signed by that CA are served.
func TestTLSClientCertificates(t *testing.T) {
	pki, other := proxytest.NewPKI(t, "proxy"), proxytest.NewPKI(t, "other")
	backends := proxytest.StartRedisBackends(t, 1)
	px := proxytest.StartProxy(t, proxytest.PoolYAML(proxytest.FreeListen(t), backends, "tls_cert_file: "+pki.ServerCert,
		"tls_key_file: "+pki.ServerKey, "tls_client_ca_file: "+pki.CAFile))
	addr := px.Addr(0).String()
	foreign := pki.ClientConfig(false)
	foreign.Certificates = []tls.Certificate{other.Client}
	tests := []struct {
		name string
		tc   *tls.Config
		ok   bool
	}{
		{"no certificate", pki.ClientConfig(false), false},
		{"certificate of another CA", foreign, false},
		{"certificate of the CA", pki.ClientConfig(true), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := proxytest.NoRetryClient(t, addr, tc.tc, 0).Set(timeoutContext(t), "cert:k", tc.name, 0).Err()
			if tc.ok && err != nil {
				t.Fatalf("client refused: %v", err)
			}
			if !tc.ok && err == nil {
				t.Fatalf("client served; want it refused")
			}
		})
	}
	if v, err := testservers.Do(backends[0].Addr, "GET", "cert:k"); err != nil || v != "certificate of the CA" {
		t.Errorf("backend holds %q (%v): a refused client's SET got through", v, err)
	}
}

// TestTLSBackends runs the proxy against a redis-server that speaks only
// TLS: verified connections work, and a failed verification is the error
// every request for that server gets.
func TestTLSBackends(t *testing.T) {
	pki, other := proxytest.NewPKI(t, "redis"), proxytest.NewPKI(t, "other")
	port := testservers.FreePort(t, "127.0.0.1")
	srv := testservers.RedisOn(t, "127.0.0.1", port, "--port", "0", "--tls-port", strconv.Itoa(port),
		"--tls-cert-file", pki.ServerCert, "--tls-key-file", pki.ServerKey, "--tls-ca-cert-file", pki.CAFile,
		"--tls-auth-clients", "no")
	if r, err := testservers.Do(srv.Addr, "PING"); err == nil && r == "+PONG" {
		t.Fatalf("the backend answers plain TCP: the test would prove nothing")
	}
	ca := "server_tls_ca_file: " + pki.CAFile
	tests := []struct {
		name    string
		extra   []string
		wantErr string // "" when requests must work
	}{
		{"verified with the CA", []string{"server_tls: true", ca}, ""},
		{"verified by name", []string{"server_tls: true", ca, "server_tls_server_name: localhost"}, ""},
		{"insecure", []string{"server_tls: true", "server_tls_insecure: true"}, ""},
		{"wrong CA", []string{"server_tls: true", "server_tls_ca_file: " + other.CAFile},
			"tls: tls: failed to verify certificate: x509: certificate signed by unknown authority"},
		{"system roots", []string{"server_tls: true"}, "x509: certificate signed by unknown authority"},
		{"wrong name", []string{"server_tls: true", ca, "server_tls_server_name: redis.example"},
			"x509: certificate is valid for localhost, not redis.example"},
		{"plain TCP", nil, "-ERR server unavailable: " + srv.Addr},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			px := proxytest.StartProxy(t, proxytest.PoolYAML(proxytest.FreeListen(t), []*testservers.Server{srv}, tc.extra...))
			rc := proxytest.Dial(t, px.Addr(0).String())
			key, val := "tlsb:"+strconv.Itoa(i), tc.name
			got := rc.Do("SET", key, val)
			if tc.wantErr != "" {
				if !strings.HasPrefix(got, "-ERR server unavailable: "+srv.Addr+": ") || !strings.Contains(got, tc.wantErr) {
					t.Fatalf("SET: %q; want -ERR server unavailable naming %q", got, tc.wantErr)
				}
				return
			}
			if got != "+OK\r\n" {
				t.Fatalf("SET: %q", got)
			}
			if got := rc.Do("GET", key); got != proxytest.Bulk(val) {
				t.Errorf("GET: %q", got)
			}
			if got := tlsDo(t, srv.Addr, pki.ClientConfig(false), "GET", key); got != proxytest.Bulk(val) {
				t.Errorf("GET straight from the backend: %q; want %q", got, proxytest.Bulk(val))
			}
		})
	}
}

// tlsDo sends one command to addr over TLS and returns the reply.
func tlsDo(t *testing.T, addr string, tc *tls.Config, args ...string) string {
	t.Helper()
	nc, err := tls.Dial("tcp", addr, tc)
	if err != nil {
		t.Fatalf("TLS dial %s: %v", addr, err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	rc := proxytest.NewConn(t, nc)
	return rc.Do(args...)
}

// TestTLSRefusalDoesNotBlockAccept checks that clients turned away by
// client_connections on a TLS listener, which must handshake before they
// can read the refusal, never stall the accept loop, even when silent.
func TestTLSRefusalDoesNotBlockAccept(t *testing.T) {
	pki := proxytest.NewPKI(t, "proxy")
	backends := proxytest.StartRedisBackends(t, 1)
	px := proxytest.StartProxy(t, proxytest.PoolYAML(proxytest.FreeListen(t), backends, "tls_cert_file: "+pki.ServerCert,
		"tls_key_file: "+pki.ServerKey, "client_connections: 2"))
	addr := px.Addr(0).String()
	ctx := timeoutContext(t)
	first := proxytest.NoRetryClient(t, addr, pki.ClientConfig(false), 0)
	if err := first.Ping(ctx).Err(); err != nil {
		t.Fatalf("first client: %v", err)
	}
	holder := proxytest.Dial(t, addr) // silent: holds the second place mid-handshake
	silent := proxytest.Dial(t, addr) // silent and over the limit
	time.Sleep(100 * time.Millisecond)
	holder.Net.Close()
	start := time.Now()
	var err error
	for time.Since(start) < 5*time.Second {
		if err = proxytest.NoRetryClient(t, addr, pki.ClientConfig(false), 0).Ping(ctx).Err(); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("no new TLS client served while a refused one stays silent: %v", err)
	}
	silent.Net.Close()
}

// TestTLSIdleClients checks TLS clients past client_park_after: they park
// (Linux) and answer their next request, whole or split across records,
// and the idle timeout still closes them, counted from their last request.
func TestTLSIdleClients(t *testing.T) {
	pki := proxytest.NewPKI(t, "proxy")
	backends := proxytest.StartRedisBackends(t, 2)
	px := proxytest.StartProxyOpts(t, proxytest.PoolYAML(proxytest.FreeListen(t), backends, "tls_cert_file: "+pki.ServerCert,
		"tls_key_file: "+pki.ServerKey, "client_park_after: 50", "client_idle_timeout: 600"),
		proxy.Options{StatsAddr: "127.0.0.1:0"})
	addr := px.Addr(0).String()
	dial := func() *proxytest.Conn {
		nc, err := tls.Dial("tcp", addr, pki.ClientConfig(false))
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		t.Cleanup(func() { nc.Close() })
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		return proxytest.NewConn(t, nc)
	}
	parks := runtime.GOOS == "linux"
	busy, idle := dial(), dial()
	if got := idle.Do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING: %q", got)
	}
	lastReply := time.Now()
	if got := busy.Do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING: %q", got)
	}
	// busy goes idle (parks) three times, and speaks again each time:
	// whole, in two records, and with a pipeline.
	for i, send := range [][]string{
		{"*3\r\n$3\r\nSET\r\n$8\r\ntls:idle\r\n$1\r\n0\r\n"},
		{"*3\r\n$3\r\nSET\r\n$8\r\ntls:i", "dle\r\n$1\r\n1\r\n"},
		{"*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$8\r\ntls:idle\r\n$1\r\n2\r\n"},
	} {
		if parks {
			proxytest.WaitStat(t, px, "client_parked", 2)
		} else {
			time.Sleep(150 * time.Millisecond)
		}
		for _, part := range send {
			io.WriteString(busy.Net, part)
			time.Sleep(10 * time.Millisecond)
		}
		if i == 2 {
			if got := busy.Read(); got != "+PONG\r\n" {
				t.Fatalf("pipelined PING after parking: %q", got)
			}
		}
		if got := busy.Read(); got != "+OK\r\n" {
			t.Fatalf("SET %d after parking: %q", i, got)
		}
	}
	// idle hears nothing more and is closed by the idle timeout, counted
	// from its last request, not from when it parked.
	idle.Net.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.R.ReadByte(); err == nil {
		t.Fatal("idle TLS client got bytes instead of being closed")
	}
	if waited := time.Since(lastReply); waited < 540*time.Millisecond || waited > 1500*time.Millisecond {
		t.Fatalf("idle TLS client closed after %v, want about 600 ms", waited)
	}
	if got := busy.Do("GET", "tls:idle"); got != "$1\r\n2\r\n" {
		t.Fatalf("GET: %q", got)
	}

	// A record cut in two by a pause past client_park_after: the client
	// parks holding half a record inside crypto/tls, and the second half
	// wakes it.
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	// Between the halves, busy and this client are parked.
	pause := func() { time.Sleep(200 * time.Millisecond) }
	if parks {
		pause = func() { proxytest.WaitStat(t, px, "client_parked", 2) }
	}
	halves := &halvingConn{Conn: raw, pause: pause}
	tc := tls.Client(halves, pki.ClientConfig(false))
	t.Cleanup(func() { tc.Close() })
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	halves.armed.Store(true)
	split := proxytest.NewConn(t, tc)
	if got := split.Do("GET", "tls:idle"); got != "$1\r\n2\r\n" {
		t.Fatalf("GET in a record cut in two: %q", got)
	}
	if got := split.Do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING in a record cut in two: %q", got)
	}
}

// halvingConn writes each buffer in two halves and calls pause between
// them, once armed.
type halvingConn struct {
	net.Conn
	pause func()
	armed atomic.Bool
}

func (h *halvingConn) Write(b []byte) (int, error) {
	if !h.armed.Load() || len(b) < 2 {
		return h.Conn.Write(b)
	}
	n, err := h.Conn.Write(b[:len(b)/2])
	if err != nil {
		return n, err
	}
	h.pause()
	m, err := h.Conn.Write(b[len(b)/2:])
	return n + m, err
}
