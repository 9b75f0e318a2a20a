package proxy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
)

// TestSessionClientLeavesMidTransaction closes clients in the middle of a
// transaction and of a watch: the server keeps no connection in MULTI or
// watching, and the next transactions run on clean connections (nothing
// queued before, no watch that aborts them).
func TestSessionClientLeavesMidTransaction(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 1, proxytest.Pool{})
	b := f.Backends[0].Addr
	for _, steps := range [][][]string{
		{{"MULTI"}, {"SET", "gone", "1"}, {"INCR", "n"}},
		{{"WATCH", "w"}},
		{{"WATCH", "w"}, {"MULTI"}, {"SET", "gone", "1"}},
	} {
		c := proxytest.Dial(t, f.Addr)
		proxytest.PipelineAny(t, c, steps)
		if len(sessionStates(t, b)) == 0 {
			t.Fatalf("%q: no connection of the server in a session", steps)
		}
		c.Net.Close()
		took := waitNoSessionStates(t, b)
		t.Logf("%q: the server's connection ended %v after the client left", steps, took)
		changer := proxytest.Dial(t, f.Addr)
		changer.Do("SET", "w", "changed")
		c2 := proxytest.Dial(t, f.Addr)
		got := proxytest.PipelineAny(t, c2, [][]string{{"MULTI"}, {"SET", "w", "mine"}, {"EXEC"}, {"EXISTS", "gone", "n"}})
		if want := "+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n:0\r\n"; strings.Join(got, "") != want {
			t.Errorf("%q: the next transaction: %q, want %q", steps, got, want)
		}
		c2.Net.Close()
		changer.Net.Close()
	}
}

// TestSessionParkedClientTimesOut lets a watching client and a client in
// MULTI sit idle: they park (client_park_after), then client_idle_timeout
// closes them, and their server connections end with them.
func TestSessionParkedClientTimesOut(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 1, proxytest.Pool{Keys: []string{"client_park_after: 100", "client_idle_timeout: 1000"}})
	b := f.Backends[0].Addr
	watcher, multi := proxytest.Dial(t, f.Addr), proxytest.Dial(t, f.Addr)
	watcher.Do("WATCH", "w")
	proxytest.PipelineAny(t, multi, [][]string{{"MULTI"}, {"SET", "gone", "1"}})
	start := time.Now()
	watcher.ExpectClosed()
	multi.ExpectClosed()
	t.Logf("idle clients closed after %v", time.Since(start))
	took := waitNoSessionStates(t, b)
	t.Logf("their server connections ended %v later", took)
}
