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

// TestSessionSurvivesReload reloads the configuration while a client is
// in a transaction, another watches a key and a third is blocked: with
// the servers kept (a client setting changed) and with the servers
// replaced (their timeout changed), each session runs on to its end on
// its connection.
func TestSessionSurvivesReload(t *testing.T) {
	for _, change := range []string{"client_idle_timeout: 60000", "timeout: 4000"} {
		t.Run(strings.Fields(change)[0], func(t *testing.T) {
			b := proxytest.StartRedisBackends(t, 1)
			listen := proxytest.FreeListen(t)
			px := proxytest.StartProxy(t, proxytest.PoolYAML(listen, b))
			tx, watcher, blocked, other := proxytest.Dial(t, listen), proxytest.Dial(t, listen), proxytest.Dial(t, listen), proxytest.Dial(t, listen)
			proxytest.PipelineAny(t, tx, [][]string{{"MULTI"}, {"SET", "k", "1"}})
			watcher.Do("WATCH", "w")
			blocked.Write(proxytest.EncodeCommand(nil, "BLPOP", "q", "0"))
			waitBlocked(t, b[0].Addr)
			applyYAML(t, px, proxytest.PoolYAML(listen, b, change))
			time.Sleep(100 * time.Millisecond) // a replaced server is drained meanwhile
			got := proxytest.PipelineAny(t, tx, [][]string{{"INCR", "k"}, {"EXEC"}})
			if want := "+QUEUED\r\n*2\r\n+OK\r\n:2\r\n"; strings.Join(got, "") != want {
				t.Errorf("transaction across the reload: %q, want %q", got, want)
			}
			other.Do("SET", "w", "changed")
			got = proxytest.PipelineAny(t, watcher, [][]string{{"MULTI"}, {"SET", "w", "mine"}, {"EXEC"}})
			if want := "+OK\r\n+QUEUED\r\n*-1\r\n"; strings.Join(got, "") != want {
				t.Errorf("watch across the reload: %q, want %q (the change aborts it)", got, want)
			}
			other.Do("RPUSH", "q", "job")
			if got, want := blocked.Read(), proxytest.Array(proxytest.Bulk("q"), proxytest.Bulk("job")); got != want {
				t.Errorf("BLPOP across the reload: %q, want %q", got, want)
			}
			if got := tx.Do("GET", "w"); got != proxytest.Bulk("changed") {
				t.Errorf("GET w: %q", got)
			}
		})
	}
}
