package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

// ping sends PING to addr and reports whether +PONG came back.
func ping(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	c.Write([]byte("PING\r\n"))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "+PONG\r\n"
}

// withPool returns conf with one more redis pool listening on a free port,
// and that port's address.
func withPool(t *testing.T, conf []byte, name string) ([]byte, string) {
	t.Helper()
	r := testservers.Redis(t)
	addr := fmt.Sprintf("127.0.0.1:%d", testservers.FreePort(t, "127.0.0.1"))
	add := fmt.Sprintf("%s:\n  listen: %s\n  redis: true\n  servers:\n    - %s:1\n", name, addr, r.Addr)
	return append(append([]byte{}, conf...), add...), addr
}

// TestReloadSignal: SIGUSR1 applies a changed file to the running binary
// under load (a pool added, then removed), and a bad file changes nothing;
// the load on the pool that stays never sees an error.
func TestReloadSignal(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "log")
	var stderr bytes.Buffer
	p := startProxy(t, &stderr, "-o", logPath)
	ld := startLoad(t, p.addr, 4)
	defer ld.stop()
	orig, err := os.ReadFile(p.conf)
	if err != nil {
		t.Fatal(err)
	}
	readLog := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	withBeta, beta := withPool(t, orig, "beta")
	steps := []struct {
		name string
		conf []byte
		want string // logged after the signal
		beta bool   // beta answers afterwards
	}{
		{"a pool added", withBeta, `msg="configuration reloaded"`, true},
		{"a bad file", []byte("alpha: [\n"), `msg="SIGUSR1: reload refused, the running configuration is unchanged"`, true},
		{"the pool removed", orig, `msg="configuration reloaded"`, false},
	}
	for _, st := range steps {
		if err := os.WriteFile(p.conf, st.conf, 0o644); err != nil {
			t.Fatal(err)
		}
		seen, ops := len(readLog()), ld.ops.Load()
		p.signal(t, syscall.SIGUSR1)
		p.waitFor(t, st.name+": logged "+st.want, func() bool { return strings.Contains(readLog()[seen:], st.want) })
		p.waitFor(t, st.name+": beta's state", func() bool { return ping(beta) == st.beta })
		p.waitFor(t, st.name+": serving the load", func() bool { return ld.ops.Load() >= ops+50 })
		p.check(t)
		if err := ld.firstErr(); err != nil {
			t.Fatalf("%s: client of alpha: %v", st.name, err)
		}
	}
	p.stop(t)
}

// TestWatchConfig: with --watch-config a change of the file reloads it,
// whether an editor writes a new file and renames it over the old one, or
// the file is a symlink whose target directory is swapped, as Kubernetes
// updates a mounted ConfigMap (conf -> ..data/conf.yml, ..data -> a
// timestamped directory, swapped by renaming a new ..data link over it).
func TestWatchConfig(t *testing.T) {
	r := testservers.Redis(t)
	addr := fmt.Sprintf("127.0.0.1:%d", testservers.FreePort(t, "127.0.0.1"))
	base := []byte(fmt.Sprintf("alpha:\n  listen: %s\n  redis: true\n  servers:\n    - %s:1\n", addr, r.Addr))
	dir := t.TempDir()
	// The ConfigMap layout.
	writeVersion := func(name string, conf []byte) {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "conf.yml"), conf, 0o644); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(name, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	writeVersion("v1", base)
	conf := filepath.Join(dir, "conf.yml")
	if err := os.Symlink(filepath.Join("..data", "conf.yml"), conf); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	p := startProxyConf(t, conf, addr, &stderr, "--watch-config")

	withBeta, beta := withPool(t, base, "beta")
	writeVersion("v2", withBeta)
	p.waitFor(t, "the symlink swap applied (beta listening)", func() bool { return ping(beta) })

	// An editor's save: a new file renamed over the old path (here the
	// link itself is replaced by a plain file).
	withGamma, gamma := withPool(t, base, "gamma")
	tmp := filepath.Join(dir, "conf.yml.swp")
	if err := os.WriteFile(tmp, withGamma, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, conf); err != nil {
		t.Fatal(err)
	}
	p.waitFor(t, "the rename-and-replace applied (gamma listening, beta gone)", func() bool { return ping(gamma) && !ping(beta) })
	if !ping(addr) {
		t.Fatal("alpha stopped answering")
	}
	p.stop(t)
}
