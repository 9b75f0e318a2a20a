package proxy_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

// ejKeys writes n keys through rc and returns, for each backend, the keys
// it holds.
func ejKeys(t *testing.T, rc *clientConn, backends []*testservers.Server, n int) [][]string {
	t.Helper()
	held := make([][]string, len(backends))
	for i := 0; i < n; i++ {
		k := strconv.Itoa(i) + ":eject"
		if got := rc.do("SET", k, "before"); got != "+OK\r\n" {
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

// ejWait retries args through rc until the reply satisfies ok, for up to
// 5 s, and returns the last reply.
func ejWait(t *testing.T, rc *clientConn, ok func(string) bool, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := rc.do(args...)
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
			backends := startRedisBackends(t, 3)
			px := startProxy(t, poolYAML(freeListen(t), backends, "auto_eject_hosts: true", "server_failure_limit: 1",
				"server_retry_timeout: 500", "timeout: 1000", "eject_mode: "+mode))
			rc := dialClient(t, px.Addr(0).String())
			held := ejKeys(t, rc, backends, 60)
			dead := 0
			for b := range held {
				if len(held[b]) > len(held[dead]) {
					dead = b
				}
			}
			deadKey := held[dead][0]
			name := backends[dead].Addr
			killServer(t, backends[dead])
			if mode == "fail_fast" {
				ejFailFast(t, rc, backends, held, dead)
			} else {
				ejRehash(t, rc, backends, held, dead)
			}

			// A fresh redis-server on the same address, as a restart.
			testservers.RedisOn(t, backends[dead].Host, backends[dead].Port)
			back := ejWait(t, rc, func(s string) bool { return !strings.HasPrefix(s, "-") && s != bulk("after") },
				"GET", deadKey)
			if back != nilBulk {
				t.Fatalf("GET %s after the restart: %q; want nil from the fresh %s", deadKey, back, name)
			}
			if got := rc.do("SET", deadKey, "again"); got != "+OK\r\n" {
				t.Fatalf("SET after the restart: %q", got)
			}
			if v, err := testservers.Do(name, "GET", deadKey); err != nil || v != "again" {
				t.Errorf("%s is back but does not hold its key: %q %v", name, v, err)
			}
		})
	}
}

// ejFailFast checks fail_fast while backends[dead] is down.
func ejFailFast(t *testing.T, rc *clientConn, backends []*testservers.Server, held [][]string, dead int) {
	t.Helper()
	name := backends[dead].Addr
	want := "-ERR server ejected: " + name + "\r\n"
	if got := ejWait(t, rc, func(s string) bool { return s == want }, "GET", held[dead][0]); got != want {
		t.Fatalf("GET of a dead server's key: %q; want %q", got, want)
	}
	for b, keys := range held {
		for _, k := range keys {
			got := rc.do("SET", k, "after")
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
			if n := dbsize(t, s.Addr); n != len(held[b]) {
				t.Errorf("%s holds %d keys, want its own %d: a key moved", s.Addr, n, len(held[b]))
			}
		}
	}
}

// ejRehash checks rehash while backends[dead] is down.
func ejRehash(t *testing.T, rc *clientConn, backends []*testservers.Server, held [][]string, dead int) {
	t.Helper()
	first := held[dead][0]
	if got := ejWait(t, rc, func(s string) bool { return s == "+OK\r\n" }, "SET", first, "after"); got != "+OK\r\n" {
		t.Fatalf("SET of a dead server's key after ejection: %q", got)
	}
	moved := 0
	for _, keys := range held {
		for _, k := range keys {
			if got := rc.do("SET", k, "after"); got != "+OK\r\n" {
				t.Errorf("SET %s: %q", k, got)
			}
			if got := rc.do("GET", k); got != bulk("after") {
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
