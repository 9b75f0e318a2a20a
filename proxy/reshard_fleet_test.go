package proxy_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/hashring"
	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/proxy"
)

// opsDone returns the number of requests the clients have had answered.
func (l *reshardLoad) opsDone() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ops
}

// startFleet starts a proxy for each configuration file, each with its
// file as Options.ConfigPath. The cleanup closes them all, then checks
// that every goroutine started since the call has ended.
func startFleet(t *testing.T, paths []string) []*proxy.Proxy {
	t.Helper()
	baseline := runtime.NumGoroutine()
	var pxs []*proxy.Proxy
	t.Cleanup(func() {
		closed := true
		for _, px := range pxs {
			closed = proxytest.CloseProxy(t, px) && closed
		}
		if closed {
			proxytest.CheckGoroutines(t, baseline)
		}
	})
	for _, path := range paths {
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		px, err := proxy.New(cfg, proxy.Options{ConfigPath: path, StatsAddr: "127.0.0.1:0"})
		if err != nil {
			t.Fatalf("proxy.New: %v", err)
		}
		if err := px.Start(); err != nil {
			px.Close()
			t.Fatalf("proxy.Start: %v", err)
		}
		pxs = append(pxs, px)
	}
	return pxs
}

// startAtYAML is the pool of lines with migrate_from's servers from and
// its start_at at; migrate_rate is unbounded.
func startAtYAML(listen string, lines, from []string, at time.Time) string {
	return proxytest.Pool{Servers: lines, Keys: []string{"migrate_rate: 1000000",
		"migrate_from: {servers: " + flowList(from) + ", start_at: " + at.Format(time.RFC3339) + "}"}}.YAML("alpha", listen)
}

// migratesCalled returns how many MIGRATEs a backend has run.
func migratesCalled(t *testing.T, addr string) int {
	t.Helper()
	info, err := testservers.Do(addr, "INFO", "commandstats")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(info, "cmdstat_migrate:calls=")
	if !ok {
		return 0
	}
	n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
	return n
}

// TestReshardFleet runs the fleet procedure with two proxies serving one
// pool of 3 servers, each with its own file, while clients write and read
// every key through both in turn: both files grow the pool to 4 with a
// start_at a few seconds ahead, and both proxies reload. Until start_at
// both route by the old placement (nothing reaches the new server, no
// MIGRATE); from it both migrate. Once both report migration_pending 0,
// every key is on its owner only, with the last value and TTL a client
// had acknowledged, and no client saw a wrong reply.
func TestReshardFleet(t *testing.T) {
	b := proxytest.StartRedisBackends(t, 4)
	lines := proxytest.ServerLines(b, nil, nil)
	dir := t.TempDir()
	listens := []string{proxytest.FreeListen(t), proxytest.FreeListen(t)}
	var paths []string
	for i, listen := range listens {
		path := filepath.Join(dir, "proxy"+strconv.Itoa(i)+".yml")
		if err := os.WriteFile(path, []byte(proxytest.Pool{Servers: lines[:3]}.YAML("alpha", listen)), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	pxs := startFleet(t, paths)
	l := fillKeys(t, listens[0], 6000)
	l.run(t, listens...)
	time.Sleep(200 * time.Millisecond)

	// start_at 4 to 5 s ahead: the checks before it run more than a
	// second before it, the ones after it more than a second after.
	startAt := time.Now().Add(5 * time.Second).UTC().Truncate(time.Second)
	for i, px := range pxs {
		if err := os.WriteFile(paths[i], []byte(startAtYAML(listens[i], lines, lines[:3], startAt)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := px.Reload(); err != nil {
			t.Fatalf("proxy %d: reload: %v", i, err)
		}
	}
	opsLoaded := l.opsDone()
	time.Sleep(time.Second) // the clients go on through both proxies
	if left := time.Until(startAt); left < time.Second {
		t.Fatalf("only %v left before start_at: the machine is too slow for this test", left)
	}
	if n := l.opsDone() - opsLoaded; n == 0 {
		t.Error("no request was answered while both proxies waited for start_at")
	}
	for i, px := range pxs {
		if s, m := proxytest.PoolStat(t, px, "migration_started"), proxytest.PoolStat(t, px, "keys_migrated"); s != 0 || m != 0 {
			t.Errorf("proxy %d before start_at: migration_started %d, keys_migrated %d; want 0, 0", i, s, m)
		}
	}
	if n := proxytest.Dbsize(t, b[3].Addr); n != 0 {
		t.Errorf("the new server holds %d keys before start_at, want 0", n)
	}
	for i, s := range b[:3] {
		if n := migratesCalled(t, s.Addr); n != 0 {
			t.Errorf("old owner %d ran %d MIGRATEs before start_at, want 0", i, n)
		}
	}

	time.Sleep(time.Until(startAt.Add(time.Second)))
	for _, px := range pxs {
		waitMigrated(t, px)
	}
	time.Sleep(200 * time.Millisecond)
	l.halt(t)
	var moved int64
	for i, px := range pxs {
		if s := proxytest.PoolStat(t, px, "migration_started"); s != 1 {
			t.Errorf("proxy %d after start_at: migration_started %d, want 1", i, s)
		}
		if n := proxytest.PoolStat(t, px, "migration_errors"); n != 0 {
			t.Errorf("proxy %d: migration_errors %d, want 0", i, n)
		}
		moved += proxytest.PoolStat(t, px, "keys_migrated")
	}
	t.Logf("%d keys moved by the two proxies, %d requests", moved, l.ops)
	if moved == 0 {
		t.Error("no key moved")
	}
	l.checkPlaced(t, b, placer(t, hashring.Config{Hash: "fnv1a_64", Distribution: "ketama"}, lines))
}

// TestReshardStartAtWaits reloads a pool of 2 growing to 3 with a start_at
// an hour ahead: clients write and read through it, and every key is then
// on its old owner only, none on the new server, and no MIGRATE ran. A
// reload with a start_at in the past starts the migration at once: every
// key ends on its new owner.
func TestReshardStartAtWaits(t *testing.T) {
	b := proxytest.StartRedisBackends(t, 3)
	lines := proxytest.ServerLines(b, nil, nil)
	listen := proxytest.FreeListen(t)
	px := proxytest.StartProxyOpts(t, proxytest.Pool{Servers: lines[:2]}.YAML("alpha", listen), proxy.Options{StatsAddr: "127.0.0.1:0"})
	applyYAML(t, px, startAtYAML(listen, lines, lines[:2], time.Now().Add(time.Hour)))
	l := fillKeys(t, listen, 3000)
	l.run(t, listen)
	time.Sleep(500 * time.Millisecond)
	l.halt(t)
	ketama := hashring.Config{Hash: "fnv1a_64", Distribution: "ketama"}
	l.checkPlaced(t, b, placer(t, ketama, lines[:2]))
	for i, s := range b[:2] {
		if n := migratesCalled(t, s.Addr); n != 0 {
			t.Errorf("old owner %d ran %d MIGRATEs before start_at, want 0", i, n)
		}
	}
	if s, p := proxytest.PoolStat(t, px, "migration_started"), proxytest.PoolStat(t, px, "migration_pending"); s != 0 || p != 2 {
		t.Errorf("before start_at: migration_started %d, migration_pending %d; want 0, 2", s, p)
	}

	applyYAML(t, px, startAtYAML(listen, lines, lines[:2], time.Now().Add(-time.Minute)))
	if s := proxytest.PoolStat(t, px, "migration_started"); s != 1 {
		t.Errorf("start_at past: migration_started %d, want 1", s)
	}
	l.run(t, listen)
	waitMigrated(t, px)
	l.halt(t)
	if proxytest.PoolStat(t, px, "keys_migrated") == 0 {
		t.Error("no key moved")
	}
	l.checkPlaced(t, b, placer(t, ketama, lines))
}

// TestReshardStartAtLateWrite plays a proxy whose clock is behind: just
// after start_at, once the proxy has moved a key to its new owner, a
// write of that key lands on its old owner (as one routed by the old
// placement would). The mover, which scans only 2 s after start_at,
// carries it over: the key ends on its new owner only, with that value.
func TestReshardStartAtLateWrite(t *testing.T) {
	b := proxytest.StartRedisBackends(t, 3)
	lines := proxytest.ServerLines(b, nil, nil)
	listen := proxytest.FreeListen(t)
	px := proxytest.StartProxyOpts(t, proxytest.Pool{Servers: lines[:2]}.YAML("alpha", listen), proxy.Options{StatsAddr: "127.0.0.1:0"})
	l := fillKeys(t, listen, 1000)
	ketama := hashring.Config{Hash: "fnv1a_64", Distribution: "ketama"}
	oldPlace, newPlace := placer(t, ketama, lines[:2]), placer(t, ketama, lines)
	i := 0
	for newPlace(l.keys[i]) == oldPlace(l.keys[i]) {
		i++
	}
	key := l.keys[i]
	// start_at 2 to 3 s ahead; the late write comes 200 ms after it, more
	// than a second before the mover's scans.
	startAt := time.Now().Add(3 * time.Second).UTC().Truncate(time.Second)
	applyYAML(t, px, startAtYAML(listen, lines, lines[:2], startAt))
	time.Sleep(time.Until(startAt.Add(200 * time.Millisecond)))
	c := proxytest.Dial(t, listen)
	if got, want := c.Do("GET", key), proxytest.Bulk(strconv.FormatInt(l.state[i].val, 10)); got != want {
		t.Fatalf("GET %s after start_at: %q, want %q", key, got, want)
	}
	if n, err := proxytest.DbsizeErr(t, b[newPlace(key)].Addr); err != nil || n == 0 {
		t.Fatalf("the new owner holds %d keys after GET %s (%v): the key did not move", n, key, err)
	}
	if got, err := testservers.Do(b[oldPlace(key)].Addr, "SET", key, "7"); err != nil || got != "+OK" {
		t.Fatalf("SET %s on its old owner: %q, %v", key, got, err)
	}
	if late := time.Since(startAt); late > time.Second {
		t.Fatalf("the late write came %v after start_at: the machine is too slow for this test", late)
	}
	l.state[i] = reshardKey{val: 7}
	waitMigrated(t, px)
	l.checkPlaced(t, b, newPlace)
}
