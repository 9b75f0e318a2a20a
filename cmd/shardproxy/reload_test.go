//go:build linux

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
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

// sockets counts the process's open sockets.
func sockets(t *testing.T, pid int) int {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Sockets, not descriptors: a plain pool's listener holds a second
	// descriptor of its socket, which its event loops accept on.
	socks := map[string]bool{}
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil && strings.HasPrefix(target, "socket:") {
			socks[target] = true
		}
	}
	return len(socks)
}

// TestReloadUnderBenchmark reloads the built binary five times while
// redis-benchmark pipelines SETs and GETs through the pool that stays:
// a server added and removed, a pool added and removed, the pool's
// timeout changed. redis-benchmark sees no error and no closed connection,
// and after each step the process holds exactly the sockets the new
// configuration needs: its listeners, the stats listener, the reload
// socket, and the client and server connections the stats count.
func TestReloadUnderBenchmark(t *testing.T) {
	bench, err := exec.LookPath("redis-benchmark")
	if err != nil {
		t.Skip("redis-benchmark not installed (package redis-tools); the README's test command installs it")
	}
	r1, r2, r3 := testservers.Redis(t), testservers.Redis(t), testservers.Redis(t)
	port := testservers.FreePort(t, "127.0.0.1")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	alpha := func(extra string, servers ...*testservers.Server) []byte {
		s := fmt.Sprintf("alpha:\n  listen: %s\n  redis: true\n%s  servers:\n", addr, extra)
		for i, r := range servers {
			s += fmt.Sprintf("    - %s:1 s%d\n", r.Addr, i)
		}
		return []byte(s)
	}
	base := alpha("", r1, r2)
	conf := writeConf(t, string(base))
	var stderr bytes.Buffer
	p := startProxyConf(t, conf, addr, &stderr)
	var out bytes.Buffer
	bm := exec.Command(bench, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-c", "20", "-P", "16",
		"-n", "100000000", "-r", "100000", "-t", "set,get", "-l", "-q")
	bm.Stdout, bm.Stderr = &out, &out
	if err := bm.Start(); err != nil {
		t.Fatal(err)
	}
	// out is read only once the benchmark has ended (bmDone closed).
	bmDone := make(chan struct{})
	go func() { bm.Wait(); close(bmDone) }()
	t.Cleanup(func() { bm.Process.Kill(); <-bmDone })
	requests := func() float64 {
		v, _ := proxytest.FetchStats(t, p.stats)["alpha"].(map[string]any)["requests"].(float64)
		return v
	}
	withBeta, beta := withPool(t, base, "beta")
	steps := []struct {
		name  string
		conf  []byte
		pools int
	}{
		{"a server added", alpha("", r1, r2, r3), 1},
		{"a server removed", alpha("", r1, r3), 1},
		{"a pool added", append(alpha("", r1, r3), withBeta[len(base):]...), 2},
		{"the timeout changed", append(alpha("  timeout: 2000\n", r1, r3), withBeta[len(base):]...), 2},
		{"the pool removed", alpha("  timeout: 2000\n", r1, r3), 1},
	}
	time.Sleep(300 * time.Millisecond)
	pid := p.cmd.Process.Pid
	// The benchmark's clients are connected by now (its first connection,
	// which reads the server's configuration, has come and gone).
	eofBefore := proxytest.FetchStats(t, p.stats)["alpha"].(map[string]any)["client_eof"]
	for i, st := range steps {
		if err := os.WriteFile(conf, st.conf, 0o644); err != nil {
			t.Fatal(err)
		}
		before := requests()
		p.signal(t, syscall.SIGUSR1)
		p.waitFor(t, st.name+": reloaded", func() bool {
			v, _ := proxytest.FetchStats(t, p.stats)["reloads"].(float64)
			return v == float64(i+1)
		})
		p.waitFor(t, st.name+": the benchmark goes on", func() bool { return requests() > before+10000 })
		if st.pools == 2 && !ping(beta) {
			t.Fatalf("%s: beta does not answer", st.name)
		}
		// Listeners (pools, stats and the reload socket of `shardproxy
		// reload`) plus the connections the stats count: nothing left
		// over from the configuration before.
		p.waitFor(t, st.name+": sockets", func() bool {
			doc := proxytest.FetchStats(t, p.stats)
			conns, _ := doc["curr_connections"].(float64)
			return sockets(t, pid) == st.pools+2+int(conns)
		})
		p.check(t)
		select {
		case <-bmDone:
			t.Fatalf("%s: redis-benchmark ended: %s", st.name, out.String())
		default:
		}
	}
	doc := proxytest.FetchStats(t, p.stats)
	a := doc["alpha"].(map[string]any)
	if a["client_err"] != float64(0) || a["client_eof"] != eofBefore || a["forward_error"] != float64(0) {
		t.Fatalf("alpha's clients saw errors or closes: client_err %v, client_eof %v (before the reloads %v), forward_error %v",
			a["client_err"], a["client_eof"], eofBefore, a["forward_error"])
	}
	bm.Process.Kill()
	<-bmDone
	if strings.Contains(out.String(), "rror") {
		t.Fatalf("redis-benchmark reported errors:\n%s", out.String())
	}
	p.stop(t)
}
