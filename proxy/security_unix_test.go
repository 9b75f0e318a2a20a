package proxy_test

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestUnixSocketListen checks "listen: /path/x.sock perms": the socket has
// exactly those permissions from the moment it appears, serves requests,
// replaces a stale socket, leaves nothing else behind, and is removed on
// Close. (A path that is not a stale socket is refused: listen_test.go.)
func TestUnixSocketListen(t *testing.T) {
	backends := startRedisBackends(t, 2)
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
				staleSocket(t, path)
			}
			listen := path
			if tc.perm != "" {
				listen += " " + tc.perm
			}
			px := startProxy(t, poolYAML(listen, backends))
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
			rc := newClientConn(t, nc)
			if got := rc.do("SET", "unix:"+tc.name, "v"); got != "+OK\r\n" {
				t.Fatalf("SET over the socket: %q", got)
			}
			if got := rc.do("GET", "unix:"+tc.name); got != bulk("v") {
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
