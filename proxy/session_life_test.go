package proxy_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/hashring"
	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
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

// TestSessionServerKilled kills the server under a transaction, a watch
// and a blocked client: each gets an error, nothing of the transaction
// runs anywhere (not on the restarted server, not on the server its keys
// fall to once it is ejected), a lost watch aborts the transaction that
// follows, and the client is out of MULTI after its EXEC.
func TestSessionServerKilled(t *testing.T) {
	b := proxytest.StartRedisBackends(t, 2)
	listen := proxytest.FreeListen(t)
	proxytest.StartProxy(t, proxytest.PoolYAML(listen, b, "auto_eject_hosts: true", "server_failure_limit: 1",
		"server_retry_timeout: 60000"))
	keys := keysOnFirst(t, listen, b, 3)
	tx, execer, watcher, blocked := proxytest.Dial(t, listen), proxytest.Dial(t, listen), proxytest.Dial(t, listen), proxytest.Dial(t, listen)
	for _, c := range []*proxytest.Conn{tx, execer} {
		if got := strings.Join(proxytest.PipelineAny(t, c, [][]string{{"MULTI"}, {"SET", keys[0], "1"}}), ""); got != "+OK\r\n+QUEUED\r\n" {
			t.Fatalf("MULTI SET: %q", got)
		}
	}
	watcher.Do("WATCH", keys[1])
	blocked.Write(proxytest.EncodeCommand(nil, "BLPOP", keys[2], "0"))
	waitBlocked(t, b[0].Addr)
	start := time.Now()
	proxytest.KillServer(t, b[0])
	got := blocked.Read()
	t.Logf("blocked client: %q %v after the kill", got, time.Since(start))
	if !strings.HasPrefix(got, "-ERR ") {
		t.Errorf("BLPOP under a killed server: %q, want an error", got)
	}
	b[0].Restart()
	// The first request on the dead connection fails; the transaction
	// then aborts, whatever comes between.
	got1 := proxytest.PipelineAny(t, tx, [][]string{{"INCR", keys[0]}, {"SET", keys[1], "x"}, {"EXEC"}, {"GET", keys[0]}})
	t.Logf("transaction: %q", got1)
	if !strings.HasPrefix(got1[0], "-ERR ") || got1[2] != "-EXECABORT Transaction discarded because of previous errors.\r\n" {
		t.Errorf("transaction under a killed server: %q, want an error, then -EXECABORT", got1)
	}
	if strings.HasPrefix(got1[3], "+QUEUED") {
		t.Errorf("GET after EXEC: %q: the client is still in MULTI", got1[3])
	}
	got3 := proxytest.PipelineAny(t, execer, [][]string{{"EXEC"}, {"GET", keys[0]}})
	t.Logf("EXEC first: %q", got3)
	if !strings.HasPrefix(got3[0], "-ERR ") || got3[1] != "$-1\r\n" {
		t.Errorf("EXEC on a killed server, then GET: %q, want an error, then $-1 (out of MULTI)", got3)
	}
	got2 := proxytest.PipelineAny(t, watcher, [][]string{{"MULTI"}, {"SET", keys[1], "mine"}, {"EXEC"}})
	t.Logf("transaction after a lost watch: %q", got2)
	if strings.HasPrefix(got2[2], "*1") || got2[1] == "+OK\r\n" {
		t.Errorf("transaction after its watch was lost with the server: %q, want it aborted", got2)
	}
	for _, s := range b {
		for _, k := range keys {
			if v, err := testservers.Do(s.Addr, "EXISTS", k); err != nil || v != ":0" {
				t.Errorf("EXISTS %s on %s: %q %v, want :0 (nothing of the transactions ran)", k, s.Addr, v, err)
			}
		}
	}
}

// keysOnFirst returns n keys that live on the first server of a pool over
// backends b (a value set through addr lands there).
func keysOnFirst(t *testing.T, addr string, b []*testservers.Server, n int) []string {
	t.Helper()
	var keys []string
	c := proxytest.Dial(t, addr)
	defer c.Net.Close()
	for i := 0; len(keys) < n; i++ {
		k := fmt.Sprint("k", i)
		c.Do("SET", k, "probe")
		if v, _ := testservers.Do(b[0].Addr, "GET", k); v == "probe" {
			keys = append(keys, k)
		}
		c.Do("DEL", k)
	}
	return keys
}

// TestSessionMigration grows a pool of 2 to 3 with migrate_from (the
// background mover slowed to 1 key a second, 200 other keys to move): a
// transaction, a watch and a blocking pop on keys whose owner changed
// find them moved to the new server before their first command.
func TestSessionMigration(t *testing.T) {
	b := proxytest.StartRedisBackends(t, 3)
	lines := proxytest.ServerLines(b, nil, nil)
	listen := proxytest.FreeListen(t)
	px := proxytest.StartProxy(t, proxytest.Pool{Servers: lines[:2]}.YAML("alpha", listen))
	oldPlace, newPlace := placer(t, hashring.Config{}, lines[:2]), placer(t, hashring.Config{}, lines)
	var moving []string
	var fill [][]string
	for i := 0; len(moving) < 4 || len(fill) < 200; i++ {
		k := fmt.Sprint("m", i)
		switch {
		case newPlace(k) != 2:
		case len(moving) < 4:
			moving = append(moving, k)
		default:
			fill = append(fill, []string{"SET", k, "x"})
		}
	}
	c := proxytest.Dial(t, listen)
	proxytest.PipelineAny(t, c, append(fill, []string{"SET", moving[0], "10"}, []string{"RPUSH", moving[1], "a"},
		[]string{"SET", moving[2], "20"}, []string{"RPUSH", moving[3], "job"}))
	applyYAML(t, px, proxytest.Pool{Servers: lines, Keys: []string{"migrate_rate: 1",
		"migrate_from: {servers: " + flowList(lines[:2]) + "}"}}.YAML("alpha", listen))
	got := proxytest.PipelineAny(t, c, [][]string{{"MULTI"}, {"INCR", moving[0]}, {"RPUSH", moving[1], "b"}, {"EXEC"}})
	if want := "+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:11\r\n:2\r\n"; strings.Join(got, "") != want {
		t.Errorf("transaction on moving keys: %q, want %q", got, want)
	}
	got = proxytest.PipelineAny(t, c, [][]string{{"WATCH", moving[2]}, {"MULTI"}, {"INCR", moving[2]}, {"EXEC"}})
	if want := "+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n:21\r\n"; strings.Join(got, "") != want {
		t.Errorf("watched transaction on a moving key: %q, want %q", got, want)
	}
	if got, want := c.Do("BLPOP", moving[3], "1"), proxytest.Array(proxytest.Bulk(moving[3]), proxytest.Bulk("job")); got != want {
		t.Errorf("BLPOP of a moving list: %q, want %q", got, want)
	}
	for i, k := range moving[:3] {
		if n, _ := testservers.Do(b[oldPlace(k)].Addr, "EXISTS", k); n != ":0" {
			t.Errorf("key %d still on its old server: EXISTS %s", i, n)
		}
		if n, _ := testservers.Do(b[2].Addr, "EXISTS", k); n != ":1" {
			t.Errorf("key %d not on its new server: EXISTS %s", i, n)
		}
	}
}
