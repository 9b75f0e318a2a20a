package proxy_test

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// listenPerms are the two ways a unix listen is opened: straight at the
// path, and made elsewhere with its permissions and moved into place.
var listenPerms = []string{"", "0600"}

// unixListen is the listen value of path with perm ("" for none).
func unixListen(path, perm string) string {
	if perm == "" {
		return path
	}
	return path + " " + perm
}

// pingUnix sends PING over the unix socket at path and returns the reply.
func pingUnix(t *testing.T, path string) string {
	t.Helper()
	nc, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	rc := proxytest.NewConn(t, nc)
	return rc.Do("PING")
}

// TestUnixListenRefusesPathInUse starts a real process listening on a unix
// path, then a pool with that listen path: the pool must not start, the
// error must say why, and the other process must still answer at the path.
func TestUnixListenRefusesPathInUse(t *testing.T) {
	backends := proxytest.StartRedisBackends(t, 1)
	holders := []struct {
		name  string
		start func(t *testing.T, path string)
	}{
		{"redis-server", func(t *testing.T, path string) {
			testservers.Redis(t, "--unixsocket", path, "--unixsocketperm", "700")
			// Redis opens its unix socket after its TCP port, which is
			// what Redis waits for.
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
				if nc, err := net.Dial("unix", path); err == nil {
					nc.Close()
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("redis-server does not accept on %s", path)
				}
			}
		}},
		{"shardproxy", func(t *testing.T, path string) {
			proxytest.StartProxy(t, proxytest.PoolYAML(path, backends))
		}},
	}
	for _, h := range holders {
		for _, perm := range listenPerms {
			t.Run(h.name+" perm "+perm, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "s.sock")
				h.start(t, path)
				err := proxytest.StartErr(t, proxytest.PoolYAML(unixListen(path, perm), backends))
				proxytest.WantErr(t, err, `pool "alpha"`, `key "listen"`, path, "another process is listening on it")
				if got := pingUnix(t, path); got != "+PONG\r\n" {
					t.Errorf("%s at %s answers PING with %q", h.name, path, got)
				}
			})
		}
	}
}

// TestUnixListenReplacesStaleSocket leaves a socket file nobody accepts on
// (a listener closed without unlinking it): the pool replaces it and serves.
func TestUnixListenReplacesStaleSocket(t *testing.T) {
	backends := proxytest.StartRedisBackends(t, 1)
	for _, perm := range listenPerms {
		t.Run("perm "+perm, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.sock")
			proxytest.StaleSocket(t, path)
			px := proxytest.StartProxy(t, proxytest.PoolYAML(unixListen(path, perm), backends))
			if got := px.Addr(0).String(); got != path {
				t.Errorf("Addr %q, want %q", got, path)
			}
			if got := pingUnix(t, path); got != "+PONG\r\n" {
				t.Errorf("PING over the socket: %q", got)
			}
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if perm != "" && fi.Mode().Perm() != 0o600 {
				t.Errorf("socket permissions %v, want 0600", fi.Mode().Perm())
			}
		})
	}
}

// TestUnixSocketListen checks "listen: /path/x.sock perms": the socket has
// exactly those permissions from the moment it appears, serves requests,
// replaces a stale socket, leaves nothing else behind, and is removed on
// Close. (A path that is not a stale socket is refused: the tests above.)
func TestUnixSocketListen(t *testing.T) {
	backends := proxytest.StartRedisBackends(t, 2)
	tests := []struct {
		name  string
		perm  string // "" for none
		want  os.FileMode
		stale bool // a stale socket is already at the path
	}{
		{"0600", "0600", 0o600, false},
		{"0660", "0660", 0o660, false},
		{"0666 over a stale socket", "0666", 0o666, true},
		{"no permissions", "", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "x.sock")
			if tc.stale {
				proxytest.StaleSocket(t, path)
			}
			listen := path
			if tc.perm != "" {
				listen += " " + tc.perm
			}
			px := proxytest.StartProxy(t, proxytest.PoolYAML(listen, backends))
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatalf("socket: %v", err)
			}
			if fi.Mode()&os.ModeSocket == 0 {
				t.Fatalf("%s is %v, not a socket", path, fi.Mode())
			}
			if tc.want != 0 && fi.Mode().Perm() != tc.want {
				t.Errorf("socket permissions %v, want %v", fi.Mode().Perm(), tc.want)
			}
			if got := px.Addr(0).String(); got != path {
				t.Errorf("Addr %q, want %q", got, path)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("directory holds %d entries, want the socket alone: %v", len(entries), entries)
			}
			nc, err := net.DialTimeout("unix", path, 5*time.Second)
			if err != nil {
				t.Fatalf("dial the socket: %v", err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			rc := proxytest.NewConn(t, nc)
			if got := rc.Do("SET", "unix:"+tc.name, "v"); got != "+OK\r\n" {
				t.Fatalf("SET over the socket: %q", got)
			}
			if got := rc.Do("GET", "unix:"+tc.name); got != proxytest.Bulk("v") {
				t.Fatalf("GET over the socket: %q", got)
			}
			nc.Close()
			if err := px.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if _, err := os.Lstat(path); !os.IsNotExist(err) {
				t.Errorf("socket still there after Close: %v", err)
			}
		})
	}
}
