//go:build linux

package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

// httpGet fetches url and returns the status and body.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

// TestMetricsAddrFlag runs the binary with --metrics-addr: /metrics has the
// pool's counters, /healthz and /readyz answer 200; SIGTERM stops it with
// status 0 and the metrics listener is closed.
func TestMetricsAddrFlag(t *testing.T) {
	maddr := fmt.Sprintf("127.0.0.1:%d", testservers.FreePort(t, "127.0.0.1"))
	p := startProxy(t, io.Discard, "--metrics-addr", maddr)
	// The metrics listener opens before the pools' (startProxy waits for
	// the pool's): it accepts now.
	if c, err := net.DialTimeout("tcp", maddr, time.Second); err != nil {
		t.Fatalf("the pool's port accepts, the metrics port does not: %v", err)
	} else {
		c.Close()
	}
	if got, err := testservers.Do(p.addr, "SET", "k", "v"); err != nil || got != "+OK" {
		t.Fatalf("SET: %q %v", got, err)
	}
	code, body := httpGet(t, "http://"+maddr+"/metrics")
	if code != http.StatusOK || !strings.Contains(body, `shardproxy_command_requests_total{command="set",pool="alpha"} 1`) ||
		!strings.Contains(body, "go_goroutines ") || !strings.Contains(body, "process_start_time_seconds ") {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}
	if code, body := httpGet(t, "http://"+maddr+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := httpGet(t, "http://"+maddr+"/readyz"); code != http.StatusOK || body != "alpha: ready\n" {
		t.Errorf("/readyz: %d %q", code, body)
	}
	p.stop(t)
	if c, err := net.DialTimeout("tcp", maddr, time.Second); err == nil {
		c.Close()
		t.Error("the metrics listener accepts after the proxy stopped")
	}
}

// TestDaemonizeMetrics checks that with -d the metrics listener is open
// once the starter returns, and that a metrics address in use fails the
// start with the reason and leaves no process.
func TestDaemonizeMetrics(t *testing.T) {
	becomeSubreaper(t)
	r := testservers.Redis(t)
	bin := buildProxy(t)
	killAtEnd(t, bin)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	conf := func(dir string) {
		yml := fmt.Sprintf("alpha:\n  listen: 127.0.0.1:%d\n  redis: true\n  servers:\n    - %s:1\n",
			testservers.FreePort(t, "127.0.0.1"), r.Addr)
		if err := os.WriteFile(filepath.Join(dir, "conf.yml"), []byte(yml), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("ready means listening", func(t *testing.T) {
		dir := t.TempDir()
		conf(dir)
		maddr := fmt.Sprintf("127.0.0.1:%d", testservers.FreePort(t, "127.0.0.1"))
		code, _, stderr := startDaemonProcess(t, bin, dir, "-c", "conf.yml", "-p", "shardproxy.pid", "-s", "0", "--metrics-addr", maddr)
		if code != 0 {
			t.Fatalf("starter: exit %d, stderr %q", code, stderr)
		}
		b, err := os.ReadFile(filepath.Join(dir, "shardproxy.pid"))
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if code, body := httpGet(t, "http://"+maddr+"/readyz"); code != http.StatusOK {
			t.Errorf("/readyz once the starter exited: %d %q", code, body)
		}
		syscall.Kill(pid, syscall.SIGTERM)
		if ws, err := reap(pid, 10*time.Second); err != nil || !ws.Exited() || ws.ExitStatus() != 0 {
			t.Fatalf("after SIGTERM: wait status %#x, %v; want exit 0", ws, err)
		}
	})

	t.Run("address in use", func(t *testing.T) {
		dir := t.TempDir()
		conf(dir)
		code, _, stderr := startDaemonProcess(t, bin, dir, "-c", "conf.yml", "-s", "0", "--metrics-addr", busy.Addr().String())
		if want := "metrics: listen tcp " + busy.Addr().String() + ": bind: address already in use"; code != 1 || !strings.Contains(stderr, want) {
			t.Fatalf("exit %d, stderr %q; want 1 and %q", code, stderr, want)
		}
		if pids := processesOf(bin); len(pids) > 0 {
			t.Fatalf("processes left after a failed start: %v", pids)
		}
	})
}
