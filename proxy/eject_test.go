package proxy_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// keysByBackend writes n keys through rc and returns, for each backend,
// the keys it holds.
func keysByBackend(t *testing.T, rc *proxytest.Conn, backends []*testservers.Server, n int) [][]string {
	t.Helper()
	held := make([][]string, len(backends))
	for i := 0; i < n; i++ {
		k := strconv.Itoa(i) + ":eject"
		if got := rc.Do("SET", k, "before"); got != "+OK\r\n" {
			t.Fatalf("SET %s: %q", k, got)
		}
		for b, s := range backends {
			if v, err := testservers.Do(s.Addr, "GET", k); err == nil && v == "before" {
				held[b] = append(held[b], k)
			}
		}
	}
	return held
}

// retryUntil retries args through rc until the reply satisfies ok, for up to
// 5 s, and returns the last reply.
func retryUntil(t *testing.T, rc *proxytest.Conn, ok func(string) bool, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := rc.Do(args...)
		if ok(got) || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEjectModes kills one of three backends of a pool with
// auto_eject_hosts and server_failure_limit 1. fail_fast: the dead
// server's keys get errors and no key moves; rehash: every key can be
// written and read again, the dead server's keys on the others. Either
// way the server comes back after a restart without restarting the proxy.
func TestEjectModes(t *testing.T) {
	for _, mode := range []string{"fail_fast", "rehash"} {
		t.Run(mode, func(t *testing.T) {
			backends := proxytest.StartRedisBackends(t, 3)
			px := proxytest.StartProxy(t, proxytest.PoolYAML(proxytest.FreeListen(t), backends, "auto_eject_hosts: true", "server_failure_limit: 1",
				"server_retry_timeout: 500", "timeout: 1000", "eject_mode: "+mode))
			rc := proxytest.Dial(t, px.Addr(0).String())
			held := keysByBackend(t, rc, backends, 60)
			dead := 0
			for b := range held {
				if len(held[b]) > len(held[dead]) {
					dead = b
				}
			}
			deadKey := held[dead][0]
			name := backends[dead].Addr
			proxytest.KillServer(t, backends[dead])
			if mode == "fail_fast" {
				checkFailFast(t, rc, backends, held, dead)
			} else {
				checkRehash(t, rc, backends, held, dead)
			}

			// A fresh redis-server on the same address, as a restart.
			testservers.RedisOn(t, backends[dead].Host, backends[dead].Port)
			back := retryUntil(t, rc, func(s string) bool { return !strings.HasPrefix(s, "-") && s != proxytest.Bulk("after") },
				"GET", deadKey)
			if back != proxytest.NilBulk {
				t.Fatalf("GET %s after the restart: %q; want nil from the fresh %s", deadKey, back, name)
			}
			if got := rc.Do("SET", deadKey, "again"); got != "+OK\r\n" {
				t.Fatalf("SET after the restart: %q", got)
			}
			if v, err := testservers.Do(name, "GET", deadKey); err != nil || v != "again" {
				t.Errorf("%s is back but does not hold its key: %q %v", name, v, err)
			}
		})
	}
}

// checkFailFast checks fail_fast while backends[dead] is down.
func checkFailFast(t *testing.T, rc *proxytest.Conn, backends []*testservers.Server, held [][]string, dead int) {
	t.Helper()
	name := backends[dead].Addr
	want := "-ERR server ejected: " + name + "\r\n"
	if got := retryUntil(t, rc, func(s string) bool { return s == want }, "GET", held[dead][0]); got != want {
		t.Fatalf("GET of a dead server's key: %q; want %q", got, want)
	}
	for b, keys := range held {
		for _, k := range keys {
			got := rc.Do("SET", k, "after")
			switch {
			case b == dead && got != want:
				t.Errorf("SET %s (dead server): %q, want %q", k, got, want)
			case b != dead && got != "+OK\r\n":
				t.Errorf("SET %s (live server): %q", k, got)
			case b != dead:
				if v, _ := testservers.Do(backends[b].Addr, "GET", k); v != "after" {
					t.Errorf("%s moved: %s holds %q", k, backends[b].Addr, v)
				}
			}
		}
	}
	for b, s := range backends {
		if b != dead {
			if n := proxytest.Dbsize(t, s.Addr); n != len(held[b]) {
				t.Errorf("%s holds %d keys, want its own %d: a key moved", s.Addr, n, len(held[b]))
			}
		}
	}
}

// checkRehash checks rehash while backends[dead] is down.
func checkRehash(t *testing.T, rc *proxytest.Conn, backends []*testservers.Server, held [][]string, dead int) {
	t.Helper()
	first := held[dead][0]
	if got := retryUntil(t, rc, func(s string) bool { return s == "+OK\r\n" }, "SET", first, "after"); got != "+OK\r\n" {
		t.Fatalf("SET of a dead server's key after ejection: %q", got)
	}
	moved := 0
	for _, keys := range held {
		for _, k := range keys {
			if got := rc.Do("SET", k, "after"); got != "+OK\r\n" {
				t.Errorf("SET %s: %q", k, got)
			}
			if got := rc.Do("GET", k); got != proxytest.Bulk("after") {
				t.Errorf("GET %s: %q", k, got)
			}
		}
	}
	for _, k := range held[dead] {
		for b, s := range backends {
			if v, _ := testservers.Do(s.Addr, "GET", k); b != dead && v == "after" {
				moved++
			}
		}
	}
	if moved != len(held[dead]) {
		t.Errorf("%d of the dead server's %d keys live on the others", moved, len(held[dead]))
	}
}

// TestFaultEjectRehash kills one of four backends with auto_eject_hosts:
// once the server is ejected, requests for every key succeed (its keys
// move to the others); after a restart it passes its health check, comes
// back, and keys written after its return live on it again.
func TestFaultEjectRehash(t *testing.T) {
	const timeout = 500 * time.Millisecond
	maxLat := timeout + 400*time.Millisecond
	b := proxytest.StartRedisBackends(t, 4)
	f := proxytest.StartFixture(t, proxytest.Pool{Keys: []string{"timeout: 500", "auto_eject_hosts: true", "server_failure_limit: 2",
		"server_retry_timeout: 300"}}, b)
	l := proxytest.StartLoad(t, f, 40, 4)
	time.Sleep(300 * time.Millisecond)
	lines := []string{l.Phase("kill").Check(t, -1, nil, maxLat)}

	killed := time.Now()
	b[1].Kill()
	time.Sleep(1500 * time.Millisecond)
	ph := l.Phase("ejected")
	lines = append(lines, ph.Check(t, 1, proxytest.ErrorCause(f, 1, "server unavailable", "."), maxLat))
	if last := ph.LastErr[1]; !last.IsZero() {
		lines = append(lines, fmt.Sprintf("last error %v after the kill", last.Sub(killed).Round(time.Millisecond)))
		if last.Sub(killed) > time.Second {
			t.Errorf("errors went on %v after the kill: the server was not ejected", last.Sub(killed))
		}
	}
	time.Sleep(time.Second)
	lines = append(lines, l.Phase("return").Check(t, -1, nil, maxLat))

	restarted := time.Now()
	b[1].Restart()
	back := false
	for time.Since(restarted) < 3*time.Second && !back {
		time.Sleep(20 * time.Millisecond)
		n, err := proxytest.DbsizeErr(t, b[1].Addr)
		back = err == nil && n > 0
	}
	if !back {
		t.Errorf("restarted server got no keys within 3 s: it did not come back")
	}
	lines = append(lines, fmt.Sprintf("keys written to the restarted server %v after its restart",
		time.Since(restarted).Round(time.Millisecond)))
	time.Sleep(500 * time.Millisecond)
	lines = append(lines, l.Phase("end").Check(t, 1, nil, maxLat))
	l.Halt()

	c := proxytest.Dial(t, f.Addr)
	key := f.KeysOn(1, "ftreturn:", 1)[0]
	if got := c.Do("SET", key, "back"); got != "+OK\r\n" {
		t.Fatalf("SET through the proxy: %q", got)
	}
	if got, err := testservers.Do(b[1].Addr, "GET", key); err != nil || got != "back" {
		t.Errorf("GET %s on the restarted server: %q %v, want \"back\"", key, got, err)
	}
	for _, s := range lines {
		t.Log(s)
	}
}
