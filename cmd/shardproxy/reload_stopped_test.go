//go:build linux

package main

import (
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// TestReloadNewOwnerStopped: while a migration moves keys through the
// proxy (the old owner cannot MIGRATE) and the new owner is stopped
// (SIGSTOP), so that the mover waits in a RESTORE it never gets answered, a
// reload (SIGUSR1, or --watch-config seeing the file change) still leaves
// the signal loop free: SIGTERM then ends the process within its drain
// bound, while the server is still stopped.
func TestReloadNewOwnerStopped(t *testing.T) {
	for _, how := range []string{"SIGUSR1", "watch-config"} {
		t.Run(how, func(t *testing.T) { testReloadNewOwnerStopped(t, how == "watch-config") })
	}
}

func testReloadNewOwnerStopped(t *testing.T, watch bool) {
	old, to := testservers.Redis(t, "--rename-command", "MIGRATE", ""), testservers.Redis(t)
	fillServer(t, old.Addr, 400)
	port := testservers.FreePort(t, "127.0.0.1")
	conf := func(rate int) string {
		return fmt.Sprintf("alpha:\n  listen: 127.0.0.1:%d\n  redis: true\n  migrate_rate: %d\n"+
			"  migrate_from: {servers: [%s:1]}\n  servers:\n    - %s:1\n    - %s:1\n", port, rate, old.Addr, old.Addr, to.Addr)
	}
	var extra []string
	if watch {
		extra = append(extra, "--watch-config")
	}
	p := startProxyConf(t, writeConf(t, conf(20)), fmt.Sprintf("127.0.0.1:%d", port), os.Stderr, extra...)
	p.waitFor(t, "moving keys", func() bool {
		pool, _ := proxytest.FetchStats(t, p.stats)["alpha"].(map[string]any)
		n, _ := pool["keys_migrated"].(float64)
		return n > 0
	})
	to.Stop()
	t.Cleanup(to.Continue)
	time.Sleep(1500 * time.Millisecond) // the mover sends its next RESTORE to the stopped server
	if err := os.WriteFile(p.conf, []byte(conf(40)), 0o644); err != nil {
		t.Fatal(err)
	}
	if watch {
		time.Sleep(1500 * time.Millisecond) // checked every second
	} else {
		p.signal(t, syscall.SIGUSR1)
		time.Sleep(200 * time.Millisecond)
	}
	start := time.Now()
	p.signal(t, syscall.SIGTERM)
	select {
	case <-p.done:
		t.Logf("exited %v after SIGTERM, the new owner still stopped: %v", time.Since(start).Round(time.Millisecond), p.err)
		if p.err != nil {
			t.Errorf("exit: %v", p.err)
		}
	case <-time.After(8 * time.Second):
		t.Errorf("no exit 8 s after SIGTERM while the new owner is stopped")
	}
	if took := time.Since(start); took > 6*time.Second {
		t.Errorf("exit took %v after SIGTERM, want at most 6 s", took.Round(time.Millisecond))
	}
}

// fillServer writes n keys ("0:key" ...) to the redis-server at addr.
func fillServer(t *testing.T, addr string, n int) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var b strings.Builder
	for i := range n {
		k := fmt.Sprintf("%d:key", i)
		fmt.Fprintf(&b, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\nv\r\n", len(k), k)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5*n)
	for got := 0; got < len(buf); {
		m, err := c.Read(buf[got:])
		if err != nil {
			t.Fatal(err)
		}
		got += m
	}
}
