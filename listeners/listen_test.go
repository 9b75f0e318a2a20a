//go:build !windows

package listeners_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/listeners"
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

// poolConfig is redis pool "alpha" listening at listen (on line 2).
func poolConfig(t *testing.T, listen string) *config.Pool {
	t.Helper()
	yaml := "alpha:\n  listen: \"" + listen + "\"\n  redis: true\n  servers:\n    - 127.0.0.1:6379:1\n"
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	return cfg.Pools[0]
}

// wantErr checks that err is not nil and contains every part.
func wantErr(t *testing.T, err error, parts ...string) {
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

// writeFile writes data to path.
func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestUnixListenRefusesNonSocket puts a file that is not a socket at the
// listen path: the pool must not start and the file must be untouched.
func TestUnixListenRefusesNonSocket(t *testing.T) {
	kinds := []struct {
		name, what string
		make       func(t *testing.T, path string)
		check      func(t *testing.T, path string)
	}{
		{"regular file", "a regular file",
			func(t *testing.T, path string) { writeFile(t, path, "keep me") },
			func(t *testing.T, path string) {
				if b, err := os.ReadFile(path); err != nil || string(b) != "keep me" {
					t.Errorf("file now holds %q, %v; want it untouched", b, err)
				}
			}},
		{"directory", "a directory",
			func(t *testing.T, path string) {
				if err := os.Mkdir(path, 0o755); err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Join(path, "inside"), "x")
			},
			func(t *testing.T, path string) {
				if _, err := os.Stat(filepath.Join(path, "inside")); err != nil {
					t.Errorf("directory changed: %v", err)
				}
			}},
		{"empty directory", "a directory",
			func(t *testing.T, path string) {
				if err := os.Mkdir(path, 0o755); err != nil {
					t.Fatal(err)
				}
			},
			func(t *testing.T, path string) {
				if fi, err := os.Lstat(path); err != nil || !fi.IsDir() {
					t.Errorf("directory gone: %v", err)
				}
			}},
		{"symbolic link", "a symbolic link",
			func(t *testing.T, path string) {
				target := filepath.Join(filepath.Dir(path), "target")
				writeFile(t, target, "x")
				if err := os.Symlink(target, path); err != nil {
					t.Fatal(err)
				}
			},
			func(t *testing.T, path string) {
				if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSymlink == 0 {
					t.Errorf("link changed: %v, %v", fi, err)
				}
			}},
	}
	for _, k := range kinds {
		for _, perm := range listenPerms {
			t.Run(k.name+" perm "+perm, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "s.sock")
				k.make(t, path)
				ln, err := listeners.Open(poolConfig(t, unixListen(path, perm)))
				if err == nil {
					ln.Close()
				}
				wantErr(t, err, `pool "alpha"`, `key "listen"`, path, "is not a socket", k.what, "(line 2)")
				k.check(t, path)
			})
		}
	}
}

// TestUnixPathOnClose: closing a unix socket Open made removes its path,
// with or without permissions, unless KeepPath said another process serves
// on it; a socket Inherited leaves its path until SetUnlinkOnClose(true).
// A path left behind is a stale socket, which the next Open replaces.
func TestUnixPathOnClose(t *testing.T) {
	exists := func(path string) bool { _, err := os.Lstat(path); return err == nil }
	for _, perm := range listenPerms {
		t.Run("perm "+perm, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.sock")
			cfg := poolConfig(t, unixListen(path, perm))
			ln, err := listeners.Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := ln.Addr().String(); got != path {
				t.Errorf("Addr %q, want %q", got, path)
			}
			if _, moved := ln.(*listeners.MovedListener); moved != (perm != "") {
				t.Errorf("Open gave a %T", ln)
			}
			ln.Close()
			if exists(path) {
				t.Fatalf("%s still there after Close", path)
			}
			if ln, err = listeners.Open(cfg); err != nil {
				t.Fatal(err)
			}
			listeners.KeepPath(ln)
			ln.Close()
			if !exists(path) {
				t.Fatalf("%s gone after KeepPath and Close", path)
			}
			if ln, err = listeners.Open(cfg); err != nil {
				t.Fatalf("Open over the stale socket: %v", err)
			}
			ln.Close()
		})
	}
	t.Run("inherited", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "s.sock")
		for _, adopt := range []bool{false, true} {
			ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			ml := listeners.Inherited(ul, path)
			if adopt {
				ml.SetUnlinkOnClose(true)
			}
			ml.Close()
			if exists(path) == adopt {
				t.Errorf("adopted %v: path there after Close %v", adopt, !adopt)
			}
			os.Remove(path)
		}
	})
}
