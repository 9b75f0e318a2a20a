// Package proxytest is the harness the tests of proxy, metrics and
// cmd/shardproxy start from: pool configurations (Pool, PoolYAML), an
// in-process proxy and its goroutine leak check (StartProxy, CloseProxy),
// fixtures over real redis-server and memcached processes (StartFixture,
// NewRedisFixture, NewMemcacheFixture), the stats port (FetchStats,
// PoolStat), a raw client connection that reads replies byte for byte
// (Conn, Dial, ReadReply), backends started, stopped and asked directly
// (backends.go), tables of malformed input (badinput.go), a checking load
// (load.go) and a test PKI (tls.go). Its functions fail the test they are
// given; nothing in it is used outside tests.
package proxytest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/hashring"
	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/proxy"
)

// Pool describes one Pool of a test configuration; the same value renders
// the YAML for the proxy and for nutcracker.
type Pool struct {
	Memcache                    bool
	Hash, Distribution, HashTag string
	ServerConnections           int
	Auth                        string // redis_auth, written as given
	DB                          int
	Keys                        []string // further "key: value" lines
	Servers                     []string // "host:port:weight [name]"
}

// Yaml renders the pool as a configuration file; listen is on line 2.
func (p Pool) YAML(name, listen string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:\n  listen: %q\n  redis: %v\n", name, listen, !p.Memcache)
	if p.Hash != "" {
		fmt.Fprintf(&b, "  hash: %s\n", p.Hash)
	}
	if p.Distribution != "" {
		fmt.Fprintf(&b, "  distribution: %s\n", p.Distribution)
	}
	if p.HashTag != "" {
		fmt.Fprintf(&b, "  hash_tag: %q\n", p.HashTag)
	}
	if p.ServerConnections > 0 {
		fmt.Fprintf(&b, "  server_connections: %d\n", p.ServerConnections)
	}
	if p.Auth != "" {
		fmt.Fprintf(&b, "  redis_auth: %s\n", p.Auth)
	}
	if p.DB != 0 {
		fmt.Fprintf(&b, "  redis_db: %d\n", p.DB)
	}
	for _, k := range p.Keys {
		fmt.Fprintf(&b, "  %s\n", k)
	}
	b.WriteString("  servers:\n")
	for _, s := range p.Servers {
		fmt.Fprintf(&b, "    - %s\n", s)
	}
	return b.String()
}

// PoolYAML renders redis pool "alpha" over backends, with further key
// lines (such as "timeout: 500").
func PoolYAML(listen string, backends []*testservers.Server, keys ...string) string {
	return Pool{Keys: keys, Servers: ServerLines(backends, nil, nil)}.YAML("alpha", listen)
}

// FreeListen returns a free loopback listen address.
func FreeListen(tb testing.TB) string {
	tb.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(testservers.FreePort(tb, "127.0.0.1")))
}

// StartProxy parses yaml, starts the proxy in-process and returns it. The
// cleanup closes it and checks that every goroutine started since the call
// has ended: start every other server before calling it.
func StartProxy(tb testing.TB, yaml string) *proxy.Proxy {
	tb.Helper()
	return StartProxyOpts(tb, yaml, proxy.Options{})
}

// StartProxyOpts is startProxy with options (a stats address, say).
func StartProxyOpts(tb testing.TB, yaml string, opt proxy.Options) *proxy.Proxy {
	tb.Helper()
	px, err := tryStartProxy(tb, yaml, opt)
	if err != nil {
		tb.Fatalf("proxy.Start: %v", err)
	}
	return px
}

// tryStartProxy is StartProxyOpts returning Start's error (the proxy then
// closed) instead of failing the test with it.
func tryStartProxy(tb testing.TB, yaml string, opt proxy.Options) (*proxy.Proxy, error) {
	tb.Helper()
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		tb.Fatalf("config: %v\n%s", err, yaml)
	}
	baseline := runtime.NumGoroutine()
	px, err := proxy.New(cfg, opt)
	if err != nil {
		tb.Fatalf("proxy.New: %v", err)
	}
	if err := px.Start(); err != nil {
		return nil, err
	}
	tb.Cleanup(func() {
		if CloseProxy(tb, px) {
			CheckGoroutines(tb, baseline)
		}
	})
	return px, nil
}

// CloseProxy closes px and reports whether Close returned within 10 s; when
// it does not, the test fails with the stacks of the proxy's goroutines.
func CloseProxy(tb testing.TB, px *proxy.Proxy) bool {
	done := make(chan error, 1)
	go func() { done <- px.Close() }()
	select {
	case err := <-done:
		if err != nil {
			tb.Errorf("proxy.Close: %v", err)
		}
		return true
	case <-time.After(10 * time.Second):
		tb.Errorf("proxy.Close did not return within 10 s; stuck goroutines:\n%s", proxyStacks())
		return false
	}
}

// parallelTests counts the tests running in parallel (runParallel). While
// any runs, the process's goroutine count says nothing about one proxy.
var parallelTests atomic.Int32

// RunParallel runs the test in parallel with the other parallel tests; the
// goroutine checks of its proxies are skipped.
func RunParallel(t *testing.T) {
	t.Parallel()
	parallelTests.Add(1)
	t.Cleanup(func() { parallelTests.Add(-1) })
}

// CheckGoroutines waits up to 2 s for the goroutine count to fall back to
// baseline, and fails with the leftover stacks if it does not. It checks
// nothing while tests run in parallel.
func CheckGoroutines(tb testing.TB, baseline int) {
	tb.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for parallelTests.Load() == 0 {
		n := runtime.NumGoroutine()
		if n <= baseline {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			tb.Errorf("%d goroutines after Close, %d before the proxy started:\n%s", n, baseline, buf)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// proxyStacks returns the stacks of goroutines in the proxy's packages.
func proxyStacks() string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "shardproxy/proxy.") || strings.Contains(g, "shardproxy/pools.") {
			if !strings.Contains(g, "proxy_test.") {
				out = append(out, g)
			}
		}
	}
	return strings.Join(out, "\n\n")
}

// StartErr builds and starts a proxy from yaml and returns the error of New
// or Start; a proxy that starts is closed at once.
func StartErr(t *testing.T, yaml string) error {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	px, err := proxy.New(cfg, proxy.Options{})
	if err != nil {
		return err
	}
	if err := px.Start(); err != nil {
		return err
	}
	return px.Close()
}

// WantErr checks that err is not nil and contains every part.
func WantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

// Fixture is a proxy with one pool, "alpha", in front of real servers.
type Fixture struct {
	Backends []*testservers.Server
	px       *proxy.Proxy
	Addr     string              // the pool's listen address
	Idents   []string            // the servers' names, as errors name them
	place    *hashring.Placement // where keys live while every server is live
}

// StartFixture starts a proxy with pool p over backends (p.servers, when
// empty, is one line of weight 1 per backend).
func StartFixture(t *testing.T, p Pool, backends []*testservers.Server) *Fixture {
	t.Helper()
	if p.Servers == nil {
		p.Servers = ServerLines(backends, nil, nil)
	}
	yaml := p.YAML("alpha", "127.0.0.1:1")
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	pc := cfg.Pools[0]
	hc := hashring.Config{Hash: pc.Hash, HashTag: pc.HashTag, Distribution: pc.Distribution}
	f := &Fixture{Backends: backends}
	for _, s := range pc.Servers {
		hc.Servers = append(hc.Servers, hashring.Server{Name: s.Ident, Weight: s.Weight})
		f.Idents = append(f.Idents, s.Ident)
	}
	if f.place, err = hashring.New(hc); err != nil {
		t.Fatalf("placement: %v", err)
	}
	// A port free a moment ago may be taken meanwhile by a process that
	// does not claim its ports (see testservers.FreePort): the fixture
	// then listens on another.
	for try := 1; ; try++ {
		f.px, err = tryStartProxy(t, p.YAML("alpha", FreeListen(t)), proxy.Options{})
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || try == 3 {
			break
		}
		t.Logf("proxy.Start: %v; listening on another port", err)
	}
	if err != nil {
		t.Fatalf("proxy.Start: %v", err)
	}
	f.Addr = f.px.Addr(0).String()
	return f
}

// shardOf returns the index of the backend that holds key while every
// server is live.
func (f *Fixture) shardOf(key string) int { return f.place.Pick([]byte(key)) }

// KeysOn returns n distinct keys "<prefix><i>" that live on shard.
func (f *Fixture) KeysOn(shard int, prefix string, n int) []string {
	var keys []string
	for i := 0; len(keys) < n; i++ {
		k := prefix + strconv.Itoa(i)
		if f.shardOf(k) == shard {
			keys = append(keys, k)
		}
	}
	return keys
}

// FetchStats reads the stats JSON served at addr.
func FetchStats(t *testing.T, addr string) map[string]any {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("stats %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	body, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("stats %s: %v", addr, err)
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("stats %s: %v\n%s", addr, err, body)
	}
	return doc
}

// PoolStat reads one counter of pool "alpha" from the proxy's stats port.
func PoolStat(t *testing.T, px *proxy.Proxy, key string) int64 {
	t.Helper()
	doc := FetchStats(t, px.StatsAddr().String())
	pool, _ := doc["alpha"].(map[string]any)
	v, ok := pool[key].(float64)
	if !ok {
		t.Fatalf("stats: no number alpha.%s in %v", key, doc)
	}
	return int64(v)
}

// WaitStat waits up to 3 s for a pool counter to reach want.
func WaitStat(t *testing.T, px *proxy.Proxy, key string, want int64) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		got := PoolStat(t, px, key)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %d after 3 s, want %d", key, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// StaleSocket leaves a unix socket file at path that nobody accepts on.
func StaleSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("stale socket not left at %s: %v", path, err)
	}
	if nc, err := net.Dial("unix", path); err == nil {
		nc.Close()
		t.Fatalf("stale socket at %s accepts", path)
	}
}

// WriteFile writes data to path.
func WriteFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
