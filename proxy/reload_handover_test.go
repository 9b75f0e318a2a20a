//go:build linux

package proxy_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/proxy"
)

// listenInode is the inode of the socket listening on TCP addr's port,
// from /proc/net/tcp and tcp6: the same inode after a reload is the same
// socket, never closed and bound again. There must be exactly one.
func listenInode(t *testing.T, addr string) string {
	t.Helper()
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	want := fmt.Sprintf(":%04X", p)
	var found []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) > 9 && strings.HasSuffix(fs[1], want) && fs[3] == "0A" {
				found = append(found, fs[9])
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("sockets listening on port %d: %v, want one", p, found)
	}
	return found[0]
}

// fileInode is the inode of the file at path (a unix socket's).
func fileInode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// dialLoop is clients that connect to an address again and again, each
// sending PING on its connection and reading the answer, and count what
// happens: a connect refused, a PONG, a connection closed before its
// answer (a leaving pool's idle client), anything else.
type dialLoop struct {
	network, addr string
	tls           *tls.Config // nil: plain
	stop          chan struct{}
	wg            sync.WaitGroup
	connects      atomic.Int64
	refused       atomic.Int64
	answered      atomic.Int64
	closed        atomic.Int64
	mu            sync.Mutex
	other         []string // any other outcome
}

// startDialLoop starts n dialling clients.
func startDialLoop(t *testing.T, network, addr string, tc *tls.Config, n int) *dialLoop {
	l := &dialLoop{network: network, addr: addr, tls: tc, stop: make(chan struct{})}
	for range n {
		l.wg.Add(1)
		go l.run()
	}
	t.Cleanup(l.halt)
	return l
}

func (l *dialLoop) run() {
	defer l.wg.Done()
	for {
		select {
		case <-l.stop:
			return
		default:
		}
		nc, err := net.DialTimeout(l.network, l.addr, 2*time.Second)
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
				l.refused.Add(1)
			} else {
				l.note("dial: " + err.Error())
			}
			continue
		}
		l.connects.Add(1)
		l.ping(nc)
	}
}

// ping sends PING on nc and counts the outcome.
func (l *dialLoop) ping(nc net.Conn) {
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	if l.tls != nil {
		nc = tls.Client(nc, l.tls)
	}
	if _, err := nc.Write([]byte("PING\r\n")); err != nil {
		if isClosed(err) {
			l.closed.Add(1)
		} else {
			l.note("write: " + err.Error())
		}
		return
	}
	line, err := bufio.NewReader(nc).ReadString('\n')
	switch {
	case err == nil && line == "+PONG\r\n":
		l.answered.Add(1)
	case line == "" && isClosed(err):
		l.closed.Add(1)
	default:
		l.note(fmt.Sprintf("PING: %q %v", line, err))
	}
}

// isClosed says err is the peer closing the connection.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || proxytest.IsReset(err) || errors.Is(err, syscall.EPIPE)
}

func (l *dialLoop) note(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.other = append(l.other, s)
}

// waitConnects waits until n more connects have been made.
func (l *dialLoop) waitConnects(t *testing.T, n int64) {
	t.Helper()
	want := l.connects.Load() + n
	for deadline := time.Now().Add(5 * time.Second); l.connects.Load() < want; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connects after 5 s, want %d", l.connects.Load(), want)
		}
	}
}

// halt stops the clients; it may be called twice.
func (l *dialLoop) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// check stops the clients and fails the test on a refused connect or an
// outcome other than a PONG or a close; it returns the counts.
func (l *dialLoop) check(t *testing.T, what string) string {
	t.Helper()
	l.halt()
	counts := fmt.Sprintf("%d connects, %d refused, %d answered, %d closed before the answer",
		l.connects.Load(), l.refused.Load(), l.answered.Load(), l.closed.Load())
	if l.refused.Load() != 0 || len(l.other) != 0 {
		t.Fatalf("%s: %s; other outcomes: %v", what, counts, l.other)
	}
	if l.answered.Load()+l.closed.Load() != l.connects.Load() {
		t.Fatalf("%s: %s: answers and closes do not add up", what, counts)
	}
	t.Logf("%s: %s", what, counts)
	return counts
}

// ntestPool is twemproxy's test_reload pool over the backends, named name
// and listening on listen, with further key lines.
func ntestPool(name, listen string, b []*testservers.Server, keys ...string) string {
	return proxytest.Pool{Hash: "fnv1a_64", Distribution: "modula", Keys: keys,
		Servers: proxytest.ServerLines(b, nil, []string{"redis-2100", "redis-2101"})}.YAML(name, listen)
}

// poolNames are the running pools' names, in file order.
func poolNames(px *proxy.Proxy) string {
	var names []string
	for _, p := range px.Snapshot().Pools {
		names = append(names, p.Name)
	}
	return strings.Join(names, " ")
}

// TestReloadHandoverRename is twemproxy's test_pool_add_del under a
// client that connects again and again: pool ntest on A becomes
// reload_test on A plus reload_test2 on B. A's socket passes from ntest to
// reload_test (the same socket: its inode stays), no connect is refused,
// both pools serve the data, and ntest's idle client is closed.
func TestReloadHandoverRename(t *testing.T) {
	b := proxytest.StartRedisBackends(t, 2)
	a, bAddr := proxytest.FreeListen(t), proxytest.FreeListen(t)
	px := proxytest.StartProxy(t, ntestPool("ntest", a, b))
	if got := proxytest.Command(t, a, "SET", "k", "v"); got != "+OK" {
		t.Fatalf("SET: %q", got)
	}
	idle := proxytest.Dial(t, a)
	if got := idle.Do("GET", "k"); got != proxytest.Bulk("v") {
		t.Fatalf("GET on ntest: %q", got)
	}
	inode := listenInode(t, a)
	loop := startDialLoop(t, "tcp", a, nil, 4)
	loop.waitConnects(t, 200)
	if err := px.ReloadBytes([]byte(ntestPool("reload_test", a, b) + ntestPool("reload_test2", bAddr, b))); err != nil {
		t.Fatal(err)
	}
	loop.waitConnects(t, 200)
	loop.check(t, "connecting to A through the reload")
	if got := listenInode(t, a); got != inode {
		t.Fatalf("A's socket is inode %s after the reload, was %s: closed and bound again", got, inode)
	}
	if got := poolNames(px); got != "reload_test reload_test2" {
		t.Fatalf("pools after the reload: %s", got)
	}
	for _, addr := range []string{a, bAddr} {
		if got := proxytest.Command(t, addr, "GET", "k"); got != "v" {
			t.Fatalf("GET k through %s: %q", addr, got)
		}
	}
	idle.ExpectClosed()
}

// TestReloadHandoverUnderLoad renames the pool on A back and forth ten
// times while clients connect to A in a loop: no connect is refused and A
// keeps its socket. Then, with the pool's server paused, clients of the
// pool leaving A have requests in flight when the reload comes: each is
// answered, exactly, before its connection closes.
func TestReloadHandoverUnderLoad(t *testing.T) {
	b := proxytest.StartRedisBackends(t, 2)
	a := proxytest.FreeListen(t)
	names := []string{"ntest", "reload_test"}
	px := proxytest.StartProxy(t, ntestPool(names[0], a, b))
	inode := listenInode(t, a)
	loop := startDialLoop(t, "tcp", a, nil, 8)
	for i := 1; i <= 10; i++ {
		loop.waitConnects(t, 100)
		if err := px.ReloadBytes([]byte(ntestPool(names[i%2], a, b))); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		if got := poolNames(px); got != names[i%2] {
			t.Fatalf("reload %d: pools %s", i, got)
		}
	}
	loop.waitConnects(t, 100)
	loop.check(t, "10 renames under a connect loop")
	if got := listenInode(t, a); got != inode {
		t.Fatalf("A's socket is inode %s after the reloads, was %s", got, inode)
	}

	// Requests in flight on the leaving pool: the servers pause, each
	// client pipelines a SET and a GET, the pool is renamed.
	const clients = 8
	conns := make([]*proxytest.Conn, clients)
	for i := range conns {
		conns[i] = proxytest.Dial(t, a)
		if got := conns[i].Do("PING"); got != "+PONG\r\n" {
			t.Fatalf("client %d: %q", i, got)
		}
	}
	for _, s := range b {
		proxytest.StopServer(t, s)
	}
	before := px.Snapshot().Pools[0].Requests
	for i, c := range conns {
		key, val := fmt.Sprintf("inflight:%d", i), fmt.Sprintf("v%d", i)
		c.Write(append(proxytest.EncodeCommand(nil, "SET", key, val), proxytest.EncodeCommand(nil, "GET", key)...))
	}
	for deadline := time.Now().Add(5 * time.Second); px.Snapshot().Pools[0].Requests < before+2*clients; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the proxy read %d requests, want %d", px.Snapshot().Pools[0].Requests-before, 2*clients)
		}
	}
	loop = startDialLoop(t, "tcp", a, nil, 4)
	loop.waitConnects(t, 50)
	if err := px.ReloadBytes([]byte(ntestPool("renamed", a, b))); err != nil {
		t.Fatal(err)
	}
	loop.waitConnects(t, 50) // PING is answered by the proxy: the servers may sleep
	time.Sleep(100 * time.Millisecond)
	for _, s := range b {
		s.Continue()
	}
	for i, c := range conns {
		want := "+OK\r\n" + proxytest.Bulk(fmt.Sprintf("v%d", i))
		c.Net.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(c.R)
		if string(got) != want || (err != nil && !proxytest.IsReset(err)) {
			t.Fatalf("client %d of the leaving pool: read %q (%v), want %q then the close", i, got, err, want)
		}
	}
	loop.check(t, "a rename with requests in flight")
	if got := listenInode(t, a); got != inode {
		t.Fatalf("A's socket is inode %s, was %s", got, inode)
	}
}

// TestReloadHandoverUnix renames a pool listening on a unix socket, with
// and without socket permissions, and changes a pool's permissions only:
// the socket file stays (same inode), it takes the new permissions, and
// no connect is refused.
func TestReloadHandoverUnix(t *testing.T) {
	b := proxytest.StartRedisBackends(t, 2)
	for _, tc := range []struct{ name, pool, from, to string }{
		{"renamed, no permissions", "reload_test", "", ""},
		{"renamed, 0600 then 0660", "reload_test", "0600", "0660"},
		{"the same pool, 0600 then 0640", "ntest", "0600", "0640"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s")
			px := proxytest.StartProxy(t, ntestPool("ntest", unixListen(path, tc.from), b))
			ino := fileInode(t, path)
			loop := startDialLoop(t, "unix", path, nil, 4)
			loop.waitConnects(t, 200)
			if err := px.ReloadBytes([]byte(ntestPool(tc.pool, unixListen(path, tc.to), b))); err != nil {
				t.Fatal(err)
			}
			loop.waitConnects(t, 200)
			loop.check(t, "connecting to the unix socket through the reload")
			if got := fileInode(t, path); got != ino {
				t.Fatalf("socket file inode %d after the reload, was %d", got, ino)
			}
			if tc.to != "" {
				fi, _ := os.Stat(path)
				if got := fmt.Sprintf("%04o", fi.Mode().Perm()); got != tc.to {
					t.Fatalf("socket permissions %s, want %s", got, tc.to)
				}
			}
			if got := poolNames(px); got != tc.pool {
				t.Fatalf("pools: %s", got)
			}
			if got := pingUnix(t, path); got != "+PONG\r\n" {
				t.Fatalf("PING: %q", got)
			}
			proxytest.CloseProxy(t, px)
			if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("socket file after Close: %v", err)
			}
		})
	}
}

// TestReloadHandoverTLS hands A's socket over where the client TLS
// changes with it: a plain pool renamed into a TLS one, a TLS pool renamed
// into a plain one, and a pool that keeps its name and turns TLS on. The
// socket stays, no connect is refused, and afterwards A speaks as the new
// pool says.
func TestReloadHandoverTLS(t *testing.T) {
	pki := proxytest.NewPKI(t, "proxy")
	b := proxytest.StartRedisBackends(t, 2)
	withTLS := []string{"tls_cert_file: " + pki.ServerCert, "tls_key_file: " + pki.ServerKey}
	for _, tc := range []struct {
		name             string
		from, to         string
		fromTLS, toTLS   bool
		fromKeys, toKeys []string
	}{
		{"plain renamed into TLS", "ntest", "reload_test", false, true, nil, withTLS},
		{"TLS renamed into plain", "ntest", "reload_test", true, false, withTLS, nil},
		{"the same pool turns TLS on", "ntest", "ntest", false, true, nil, withTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := proxytest.FreeListen(t)
			px := proxytest.StartProxy(t, ntestPool(tc.from, a, b, tc.fromKeys...))
			inode := listenInode(t, a)
			clientTLS := func(on bool) *tls.Config {
				if on {
					return pki.ClientConfig(false)
				}
				return nil
			}
			loop := startDialLoop(t, "tcp", a, clientTLS(tc.fromTLS), 4)
			loop.waitConnects(t, 100)
			if err := px.ReloadBytes([]byte(ntestPool(tc.to, a, b, tc.toKeys...))); err != nil {
				t.Fatal(err)
			}
			// The loop speaks the old pool's way: count its connects
			// only, then speak the new way.
			loop.halt()
			if loop.refused.Load() != 0 {
				t.Fatalf("%d connects refused through the reload (%d made)", loop.refused.Load(), loop.connects.Load())
			}
			t.Logf("%d connects, 0 refused", loop.connects.Load())
			after := startDialLoop(t, "tcp", a, clientTLS(tc.toTLS), 2)
			after.waitConnects(t, 50)
			after.check(t, "after the reload")
			if after.answered.Load() != after.connects.Load() {
				t.Fatalf("the new pool closed %d connections unanswered", after.closed.Load())
			}
			if got := listenInode(t, a); got != inode {
				t.Fatalf("A's socket is inode %s, was %s", got, inode)
			}
			old := startDialLoop(t, "tcp", a, clientTLS(tc.fromTLS), 1)
			old.waitConnects(t, 3)
			old.halt()
			if old.answered.Load() != 0 {
				t.Fatalf("a client speaking the old pool's way was answered %d times", old.answered.Load())
			}
		})
	}
}

// TestReloadHandoverAbort: a reload that would hand A's socket to a
// renamed pool but fails after that was prepared (the file's second pool
// listens on a port in use) changes nothing: ntest keeps A's socket and
// its clients, no connect is refused. A good reload afterwards hands the
// socket over.
func TestReloadHandoverAbort(t *testing.T) {
	b := proxytest.StartRedisBackends(t, 2)
	a, bAddr := proxytest.FreeListen(t), proxytest.FreeListen(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	px := proxytest.StartProxy(t, ntestPool("ntest", a, b))
	held := proxytest.Dial(t, a)
	if got := held.Do("SET", "k", "v"); got != "+OK\r\n" {
		t.Fatalf("SET: %q", got)
	}
	inode := listenInode(t, a)
	loop := startDialLoop(t, "tcp", a, nil, 4)
	loop.waitConnects(t, 100)
	bad := ntestPool("reload_test", a, b) + ntestPool("reload_test2", taken.Addr().String(), b)
	if err := px.ReloadBytes([]byte(bad)); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("reload with a port in use: %v", err)
	}
	loop.waitConnects(t, 100)
	counts := loop.check(t, "through the refused reload")
	if loop.closed.Load() != 0 {
		t.Fatalf("a refused reload closed connections: %s", counts)
	}
	if got := poolNames(px); got != "ntest" {
		t.Fatalf("pools after the refused reload: %s", got)
	}
	if got := listenInode(t, a); got != inode {
		t.Fatalf("A's socket is inode %s, was %s", got, inode)
	}
	if got := held.Do("GET", "k"); got != proxytest.Bulk("v") {
		t.Fatalf("ntest's client after the refused reload: %q", got)
	}
	if !refused(bAddr) {
		t.Fatal("the refused reload's first pool listens")
	}
	if err := px.ReloadBytes([]byte(ntestPool("reload_test", a, b))); err != nil {
		t.Fatal(err)
	}
	if got := listenInode(t, a); got != inode {
		t.Fatalf("A's socket is inode %s after the good reload, was %s", got, inode)
	}
	if got := proxytest.Command(t, a, "GET", "k"); got != "v" {
		t.Fatalf("GET through reload_test: %q", got)
	}
	held.ExpectClosed()
}

// TestReloadHandoverMoves: the sockets pass between pools that stay too.
// Two pools swap their addresses; a pool moves to a new port and an added
// pool takes its old one; a pool that changes protocol keeps its address.
// Each address keeps its socket and answers as the pool it now belongs
// to: the pools' servers hold different values of the key "who".
func TestReloadHandoverMoves(t *testing.T) {
	rx, ry := proxytest.StartRedisBackends(t, 1), proxytest.StartRedisBackends(t, 1)
	mc := proxytest.StartMemcacheBackends(t, 1)
	proxytest.BackendDo(t, rx[0].Addr, []string{"SET", "who", "x"})
	proxytest.BackendDo(t, ry[0].Addr, []string{"SET", "who", "y"})
	pool := func(name, listen string, b []*testservers.Server) string {
		return proxytest.Pool{Servers: proxytest.ServerLines(b, nil, nil)}.YAML(name, listen)
	}
	memcache := func(name, listen string) string {
		return proxytest.Pool{Memcache: true, Servers: proxytest.ServerLines(mc, nil, nil)}.YAML(name, listen)
	}
	a, bAddr, c := proxytest.FreeListen(t), proxytest.FreeListen(t), proxytest.FreeListen(t)
	px := proxytest.StartProxy(t, pool("x", a, rx)+pool("y", bAddr, ry))
	inodes := map[string]string{a: listenInode(t, a), bAddr: listenInode(t, bAddr)}
	who := func(addr string) string { return proxytest.Command(t, addr, "GET", "who") }
	if who(a) != "x" || who(bAddr) != "y" {
		t.Fatalf("before: A answers %q, B %q", who(a), who(bAddr))
	}
	steps := []struct {
		name string
		conf string
		want map[string]string // address -> who answers there
	}{
		{"x and y swap", pool("x", bAddr, rx) + pool("y", a, ry), map[string]string{a: "y", bAddr: "x"}},
		{"x moves to C, z takes B", pool("x", c, rx) + pool("y", a, ry) + pool("z", bAddr, ry), map[string]string{a: "y", bAddr: "y", c: "x"}},
	}
	for _, st := range steps {
		loop := startDialLoop(t, "tcp", a, nil, 2)
		loopB := startDialLoop(t, "tcp", bAddr, nil, 2)
		loop.waitConnects(t, 50)
		if err := px.ReloadBytes([]byte(st.conf)); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		loop.waitConnects(t, 50)
		loopB.waitConnects(t, 50)
		loop.check(t, st.name+": A")
		loopB.check(t, st.name+": B")
		for addr, want := range st.want {
			if got := who(addr); got != want {
				t.Fatalf("%s: %s answers %q, want %q", st.name, addr, got, want)
			}
			if inode, ok := inodes[addr]; ok && listenInode(t, addr) != inode {
				t.Fatalf("%s: %s's socket changed", st.name, addr)
			}
		}
	}
	// y becomes a memcache pool on A: a pool replaced, its socket kept.
	if err := px.ReloadBytes([]byte(pool("x", c, rx) + memcache("y", a) + pool("z", bAddr, ry))); err != nil {
		t.Fatal(err)
	}
	if got := listenInode(t, a); got != inodes[a] {
		t.Fatalf("A's socket changed with y's protocol")
	}
	mcConn := proxytest.Dial(t, a)
	if err := mcConn.Exchange("set k 0 0 1\r\nv\r\n", "STORED\r\n"); err != nil {
		t.Fatalf("memcache through A: %v", err)
	}
}
