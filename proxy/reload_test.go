package proxy_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/hashring"
	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/proxy"
)

// reloadLoad is clients that keep reading and writing their own keys of
// pool alpha through a reload: each GET must see the value its client SET
// last, unless the key's server changed.
type reloadLoad struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	ops      atomic.Int64
	mu       sync.Mutex
	errs     []string
	stale    map[string]int // key -> GETs that missed the last SET
	perConns []*proxytest.Conn
}

func startReloadLoad(t *testing.T, addr string, clients, keys int) *reloadLoad {
	l := &reloadLoad{stop: make(chan struct{}), stale: map[string]int{}}
	for g := 0; g < clients; g++ {
		c := proxytest.Dial(t, addr)
		l.perConns = append(l.perConns, c)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			last := map[string]string{}
			for n := 0; ; n++ {
				select {
				case <-l.stop:
					return
				default:
				}
				key := fmt.Sprintf("%c%d:reload:%d", 'a'+n%keys%26, g, n%keys)
				val := strconv.Itoa(n)
				want := proxytest.NilBulk
				if v, ok := last[key]; ok {
					want = proxytest.Bulk(v)
				}
				got, err := doRaw(c, "GET", key)
				if err == nil && got == want {
					got, err = doRaw(c, "SET", key, val)
					if err == nil && got != "+OK\r\n" {
						err = fmt.Errorf("SET %s: %q", key, got)
					}
				} else if err == nil {
					if strings.HasPrefix(got, "-") {
						err = fmt.Errorf("GET %s: %q", key, got)
					} else {
						l.mu.Lock()
						l.stale[key]++
						l.mu.Unlock()
						got, err = doRaw(c, "SET", key, val)
						if err == nil && got != "+OK\r\n" {
							err = fmt.Errorf("SET %s: %q", key, got)
						}
					}
				}
				if err != nil {
					l.mu.Lock()
					l.errs = append(l.errs, err.Error())
					l.mu.Unlock()
					return
				}
				last[key] = val
				l.ops.Add(1)
			}
		}()
	}
	return l
}

// check fails the test on any error and on a stale read of a key that did
// not move; it returns the count of operations so far.
func (l *reloadLoad) check(t *testing.T, moved func(key string) bool) int64 {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.errs {
		t.Errorf("load: %s", e)
	}
	for k, n := range l.stale {
		if !moved(k) {
			t.Errorf("key %s did not move but %d GETs missed its last SET", k, n)
		}
	}
	return l.ops.Load()
}

func (l *reloadLoad) halt() {
	close(l.stop)
	l.wg.Wait()
}

// owners places keys on the servers named in lines ("addr:weight name"),
// as the proxy's default ketama and fnv1a_64 do.
func owners(t *testing.T, lines []string) func(key string) string {
	t.Helper()
	var hs []hashring.Server
	var names []string
	for _, l := range lines {
		name := l[strings.LastIndexByte(l, ' ')+1:]
		hs = append(hs, hashring.Server{Name: name, Weight: 1})
		names = append(names, name)
	}
	place, err := hashring.New(hashring.Config{Hash: "fnv1a_64", Distribution: "ketama", Servers: hs})
	if err != nil {
		t.Fatal(err)
	}
	return func(key string) string { return names[place.Pick([]byte(key))] }
}

// refused reports whether nothing accepts on addr.
func refused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return true
	}
	c.Close()
	return false
}

// connectedClients is a backend's connected_clients, counting the
// connection that asks.
func connectedClients(t *testing.T, addr string) int {
	t.Helper()
	info, err := testservers.Do(addr, "INFO", "clients")
	if err != nil {
		t.Fatalf("INFO %s: %v", addr, err)
	}
	_, rest, _ := strings.Cut(info, "connected_clients:")
	n, _ := strconv.Atoi(strings.TrimSpace(rest[:strings.IndexByte(rest, '\r')]))
	return n
}

// TestReloadUnderLoad changes the configuration file five times while
// clients read and write through pool alpha, and reloads it each time: a
// server added, a server removed, a pool added, a pool removed, alpha's
// listen port changed. The clients of alpha keep their connections and
// see no error, and no key that stayed on its server reads stale; after
// each step exactly the listeners and server connections of the new
// configuration are open.
func TestReloadUnderLoad(t *testing.T) {
	b := proxytest.StartRedisBackends(t, 4)
	line := func(i int, name string) string { return b[i].Addr + ":1 " + name }
	la, lb, lc, la2 := proxytest.FreeListen(t), proxytest.FreeListen(t), proxytest.FreeListen(t), proxytest.FreeListen(t)
	path := filepath.Join(t.TempDir(), "shardproxy.yml")
	write := func(yaml string) {
		if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	alpha := func(listen string, servers ...string) string {
		return proxytest.Pool{Servers: servers}.YAML("alpha", listen)
	}
	beta := proxytest.Pool{Servers: []string{line(2, "c")}}.YAML("beta", lb)
	gamma := proxytest.Pool{Servers: []string{line(2, "c")}}.YAML("gamma", lc)
	v1 := []string{line(0, "a"), line(1, "b")}
	v2 := []string{line(0, "a"), line(1, "b"), line(3, "d")}
	v3 := []string{line(0, "a"), line(3, "d")}
	write(alpha(la, v1...) + beta)
	yaml, _ := os.ReadFile(path)
	px := proxytest.StartProxyOpts(t, string(yaml), proxy.Options{ConfigPath: path, StatsAddr: "127.0.0.1:0"})
	o1, o2, o3 := owners(t, v1), owners(t, v2), owners(t, v3)
	moved := func(k string) bool { return o1(k) != o2(k) || o2(k) != o3(k) }

	load := startReloadLoad(t, la, 4, 60)
	betaClient := proxytest.Dial(t, lb)
	if got := betaClient.Do("SET", "beta:k", "v"); got != "+OK\r\n" {
		t.Fatalf("beta SET: %q", got)
	}
	reload := func(step, yaml string) {
		t.Helper()
		before := load.ops.Load()
		write(yaml)
		if err := px.Reload(); err != nil {
			t.Fatalf("%s: reload: %v", step, err)
		}
		time.Sleep(300 * time.Millisecond)
		after := load.check(t, moved)
		if after == before {
			t.Fatalf("%s: the load made no progress", step)
		}
		t.Logf("%s: %d operations during the step", step, after-before)
	}

	reload("server added", alpha(la, v2...)+beta)
	reload("server removed", alpha(la, v3...)+beta)
	// The removed server's connections close once drained: only the
	// connection asking is left.
	deadline := time.Now().Add(5 * time.Second)
	for connectedClients(t, b[1].Addr) > 1 {
		if time.Now().After(deadline) {
			t.Fatalf("removed server still has %d clients", connectedClients(t, b[1].Addr))
		}
		time.Sleep(20 * time.Millisecond)
	}
	reload("pool added", alpha(la, v3...)+beta+gamma)
	if got := proxytest.Dial(t, lc).Do("PING"); got != "+PONG\r\n" {
		t.Fatalf("new pool gamma: PING: %q", got)
	}
	reload("pool removed", alpha(la, v3...)+gamma)
	if _, err := betaClient.ReadToEOF(3 * time.Second); err != nil && !proxytest.IsReset(err) {
		t.Fatalf("client of the removed pool beta: %v, want closed", err)
	}
	if !refused(lb) {
		t.Fatal("the removed pool beta still accepts")
	}
	reload("listen changed", alpha(la2, v3...)+gamma)
	if !refused(la) {
		t.Fatal("alpha's old listen address still accepts")
	}
	if got := proxytest.Dial(t, la2).Do("PING"); got != "+PONG\r\n" {
		t.Fatalf("alpha on its new address: PING: %q", got)
	}
	time.Sleep(200 * time.Millisecond)
	load.check(t, moved)
	load.halt()
	if got := poolStatTop(t, px, "reloads"); got != 5 {
		t.Fatalf("reloads = %v, want 5", got)
	}
	// Server connections of the final configuration only: alpha's a and
	// d; b has left; gamma has not used c yet (connections are made on
	// first use) and beta, which did, is gone.
	for _, tc := range []struct {
		addr string
		want int
	}{{b[0].Addr, 2}, {b[1].Addr, 1}, {b[2].Addr, 1}, {b[3].Addr, 2}} {
		if got := connectedClients(t, tc.addr); got != tc.want {
			t.Errorf("%s: %d connected clients, want %d (the proxy's and the asker's)", tc.addr, got, tc.want)
		}
	}
}

// poolStatTop reads a top-level number of the stats document.
func poolStatTop(t *testing.T, px *proxy.Proxy, key string) float64 {
	t.Helper()
	v, _ := proxytest.FetchStats(t, px.StatsAddr().String())[key].(float64)
	return v
}

// TestReloadBadFile: a reload with a bad file changes nothing: the error
// names pool, key and line, it is counted with the error in the stats, and
// the proxy keeps serving on its running configuration.
func TestReloadBadFile(t *testing.T) {
	b := proxytest.StartRedisBackends(t, 2)
	listen := proxytest.FreeListen(t)
	path := filepath.Join(t.TempDir(), "shardproxy.yml")
	good := proxytest.PoolYAML(listen, b)
	if err := os.WriteFile(path, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	px := proxytest.StartProxyOpts(t, good, proxy.Options{ConfigPath: path, StatsAddr: "127.0.0.1:0"})
	c := proxytest.Dial(t, listen)
	if got := c.Do("SET", "k", "v"); got != "+OK\r\n" {
		t.Fatalf("SET: %q", got)
	}
	digest := proxytest.FetchStats(t, px.StatsAddr().String())["config_digest"]
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, bad := range []struct{ name, yaml, want string }{
		{"unknown hash", strings.Replace(good, "servers:", "hash: fnv\n  servers:", 1), `key "hash"`},
		{"listen host that does not resolve", strings.Replace(good, listen, "nosuch.invalid:1", 1), "does not resolve"},
		{"listen port in use", strings.Replace(good, listen, taken.Addr().String(), 1), "address already in use"},
		{"not YAML", "alpha: [", "line"},
	} {
		if err := os.WriteFile(path, []byte(bad.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		err := px.Reload()
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Fatalf("%s: reload: %v, want an error with %q", bad.name, err, bad.want)
		}
		if got := c.Do("GET", "k"); got != proxytest.Bulk("v") {
			t.Fatalf("%s: GET after a refused reload: %q", bad.name, got)
		}
	}
	doc := proxytest.FetchStats(t, px.StatsAddr().String())
	if doc["reload_failures"] != float64(4) || doc["reloads"] != float64(0) || doc["config_digest"] != digest {
		t.Fatalf("stats after 4 refused reloads: failures %v, reloads %v, digest %v (was %v)",
			doc["reload_failures"], doc["reloads"], doc["config_digest"], digest)
	}
	if e, _ := doc["reload_error"].(string); e == "" {
		t.Fatal("reload_error is empty")
	}
	if c2 := proxytest.Dial(t, listen); c2.Do("PING") != "+PONG\r\n" {
		t.Fatal("new client after refused reloads")
	}
}

// TestReloadBytes: ReloadBytes applies the bytes it is given, not the file
// as it is now, and counts as Reload does: the running digest is the
// applied bytes', and bytes that do not parse are refused and counted.
func TestReloadBytes(t *testing.T) {
	b := proxytest.StartRedisBackends(t, 2)
	listen, beta := proxytest.FreeListen(t), proxytest.FreeListen(t)
	path := filepath.Join(t.TempDir(), "shardproxy.yml")
	good := proxytest.PoolYAML(listen, b[:1])
	if err := os.WriteFile(path, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	px := proxytest.StartProxyOpts(t, good, proxy.Options{ConfigPath: path, StatsAddr: "127.0.0.1:0"})
	if px.ConfigDigest() != config.Digest([]byte(good)) {
		t.Fatalf("digest at start %q, want the file's %q", px.ConfigDigest(), config.Digest([]byte(good)))
	}
	withBeta := good + fmt.Sprintf("beta:\n  listen: %s\n  redis: true\n  servers:\n    - %s:1\n", beta, b[1].Addr)
	if err := px.ReloadBytes([]byte(withBeta)); err != nil {
		t.Fatal(err)
	}
	if got := proxytest.Dial(t, beta).Do("PING"); got != "+PONG\r\n" {
		t.Fatalf("beta after ReloadBytes: %q", got)
	}
	err := px.ReloadBytes([]byte(good[:len(good)/2] + "[\n"))
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("ReloadBytes of a half file: %v, want an error naming %s", err, path)
	}
	doc := proxytest.FetchStats(t, px.StatsAddr().String())
	want := config.Digest([]byte(withBeta))
	if doc["reloads"] != float64(1) || doc["reload_failures"] != float64(1) || doc["config_digest"] != want || px.ConfigDigest() != want {
		t.Fatalf("reloads %v, reload_failures %v, config_digest %v (ConfigDigest %s), want 1, 1 and %s",
			doc["reloads"], doc["reload_failures"], doc["config_digest"], px.ConfigDigest(), want)
	}
}

// doRaw sends one command and returns its reply's exact bytes.
func doRaw(c *proxytest.Conn, args ...string) (string, error) {
	r, err := c.TryDo(5*time.Second, args...)
	if err != nil {
		return "", err
	}
	return r.Raw, nil
}
