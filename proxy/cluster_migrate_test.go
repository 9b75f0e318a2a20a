//go:build linux

package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardproxy/shardproxy/hashring"
	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/proxy"
)

// oldPool is a nutcracker pool's data before it moves into a cluster:
// keys of five types placed by ketama (fnv1a_64) over three standalone
// redis-servers, a third of them with a TTL.
type oldPool struct {
	backends []*testservers.Server
	prefix   string
	n        int
	filled   [2]time.Time // when the filling began and ended
}

// cmigTTL is the TTL of key i of an oldPool that has one, in ms: long
// enough that none expires during a test, distinct per key.
func cmigTTL(i int) int64 { return 600_000 + int64(i)*10 }

// key is the name of key i of the old pool. The index comes first: nutcracker's fnv1a_64 (its low 32 bits) mixes
// the last bytes of a key into few bits, so keys that differ only at
// their end crowd one part of the ketama ring, and one old server of
// three can get none of them, by the servers' ports.
func (o *oldPool) key(i int) string { return fmt.Sprintf("%d:%s", i, o.prefix) }

// hasTTL says key i has a TTL; plain says it is a string without one,
// which the test's writers overwrite.
func hasTTL(i int) bool { return i%3 == 0 }
func plain(i int) bool  { return i%5 == 0 && !hasTTL(i) }

// fillOldPool starts three redis-servers and writes n keys through a
// ketama pool over them, as a nutcracker pool would have placed them.
func fillOldPool(t *testing.T, prefix string, n int) *oldPool {
	t.Helper()
	f := proxytest.NewRedisFixture(t, 3, proxytest.Pool{})
	o := &oldPool{backends: f.Backends, prefix: prefix, n: n}
	var cmds [][]string
	for i := range n {
		k, v := o.key(i), strconv.Itoa(i)
		switch i % 5 {
		case 0:
			cmds = append(cmds, []string{"SET", k, "v" + v})
		case 1:
			cmds = append(cmds, []string{"HSET", k, "f1", v, "f2", "x"})
		case 2:
			cmds = append(cmds, []string{"RPUSH", k, "a", "b", v})
		case 3:
			cmds = append(cmds, []string{"SADD", k, "m1", "m2", v})
		case 4:
			cmds = append(cmds, []string{"ZADD", k, "1", "a", v, "b"})
		}
		if hasTTL(i) {
			cmds = append(cmds, []string{"PEXPIRE", k, strconv.FormatInt(cmigTTL(i), 10)})
		}
	}
	o.filled[0] = time.Now()
	for i, rep := range proxytest.Texts(t, f.Addr, cmds) {
		if strings.HasPrefix(rep, "-") {
			t.Fatalf("filling %v: %q", cmds[i], rep)
		}
	}
	o.filled[1] = time.Now()
	total := 0
	for _, b := range o.backends {
		d := proxytest.Dbsize(t, b.Addr)
		if d == 0 {
			t.Fatalf("old server %s holds none of the %d keys", b.Addr, n)
		}
		total += d
	}
	if total != n {
		t.Fatalf("the old servers hold %d keys, want %d", total, n)
	}
	return o
}

// migrateFrom is the migrate_from key of a cluster pool over o's servers.
func (o *oldPool) migrateFrom(extra ...string) string {
	var b strings.Builder
	b.WriteString("migrate_from:\n    servers:\n")
	for _, s := range o.backends {
		fmt.Fprintf(&b, "      - %s:1\n", s.Addr)
	}
	for _, e := range extra {
		fmt.Fprintf(&b, "    %s\n", e)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// migrateLoad is writers and readers through a cluster pool while it
// migrates: each writer owns some of the plain keys and keys of its own,
// sets them and reads each back, and reads keys of the other types and
// with a TTL, which nobody writes: every read must return the latest
// write, or the original value.
type migrateLoad struct {
	o *oldPool
	// newEarly says every tenth step of a writer writes a new key from
	// the start; else its new keys come after its old ones. (A client's
	// request for a new key of a slot that moved behind the pool's map
	// refreshes the map, which TestClusterMigrateMoved must not have
	// before the mover meets those slots.)
	newEarly bool
	stop     chan struct{}
	wg       sync.WaitGroup
	ops      atomic.Int64
	mu       sync.Mutex
	errs     []error
	last     map[string]string // the latest value written per key
}

func startMigrateLoad(t *testing.T, addr string, o *oldPool, writers int, newEarly bool) *migrateLoad {
	l := &migrateLoad{o: o, newEarly: newEarly, stop: make(chan struct{}), last: map[string]string{}}
	for w := range writers {
		c := proxytest.NoRetryClient(t, addr, nil, 2)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			if err := l.write(c, w, writers); err != nil {
				l.mu.Lock()
				l.errs = append(l.errs, fmt.Errorf("writer %d: %w", w, err))
				l.mu.Unlock()
			}
		}()
	}
	return l
}

// write runs writer w of n until stopped or an error.
func (l *migrateLoad) write(c *redis.Client, w, n int) error {
	ctx := context.Background()
	o := l.o
	mine := map[string]string{}
	defer func() {
		l.mu.Lock()
		for k, v := range mine {
			l.last[k] = v
		}
		l.mu.Unlock()
	}()
	for round := 0; ; round++ {
		for step := 0; ; step++ {
			select {
			case <-l.stop:
				return nil
			default:
			}
			i, more := l.keyAt(w, n, step)
			if !more {
				break
			}
			if i < 0 {
				continue
			}
			k := o.key(i)
			if i >= o.n {
				k = fmt.Sprintf("%d:new:%s", i, o.prefix)
			} else if !plain(i) {
				if err := readOriginal(ctx, c, o, i); err != nil {
					return err
				}
				l.ops.Add(1)
				continue
			}
			v := fmt.Sprintf("w%d-r%d", w, round)
			if err := c.Set(ctx, k, v, 0).Err(); err != nil {
				return fmt.Errorf("SET %s: %w", k, err)
			}
			mine[k] = v
			if got, err := c.Get(ctx, k).Result(); err != nil || got != v {
				return fmt.Errorf("GET %s after SET %s: %q, %v", k, v, got, err)
			}
			l.ops.Add(2)
		}
	}
}

// keyAt returns the index of the key writer w of n takes at step of a
// round (o.n and over: a new key), -1 for none, and more == false past the
// round's last step. With newEarly every tenth step takes a new key (100
// per writer, in turn), so that a migration that ends before the old keys
// are walked (a race build) still sees new keys; else the new keys follow
// the old ones.
func (l *migrateLoad) keyAt(w, n, step int) (i int, more bool) {
	o := l.o
	if !l.newEarly {
		i = w + n*step
		return i, i < o.n+100*n
	}
	if step >= (o.n/n+1)*10/9+10 {
		return 0, false
	}
	if step%10 == 9 {
		return o.n + w + n*((step/10)%100), true
	}
	if i = w + n*(step-step/10); i >= o.n {
		return -1, true
	}
	return i, true
}

// readOriginal reads key i of o, which nobody writes, and checks its
// original value.
func readOriginal(ctx context.Context, c *redis.Client, o *oldPool, i int) error {
	k, v := o.key(i), strconv.Itoa(i)
	var got any
	var err error
	switch i % 5 {
	case 0:
		got, err = c.Get(ctx, k).Result()
		v = "v" + v
	case 1:
		got, err = c.HGet(ctx, k, "f1").Result()
	case 2:
		got, err = c.LIndex(ctx, k, 2).Result()
	case 3:
		var is bool
		is, err = c.SIsMember(ctx, k, v).Result()
		got, v = strconv.FormatBool(is), "true"
	case 4:
		var s float64
		s, err = c.ZScore(ctx, k, "b").Result()
		got = strconv.FormatFloat(s, 'f', -1, 64)
	}
	if err != nil || got != v {
		return fmt.Errorf("key %s: %v, %v; want %q", k, got, err, v)
	}
	return nil
}

// halt stops the load and fails the test on any error it met.
func (l *migrateLoad) halt(t *testing.T) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	if err := errors.Join(l.errs...); err != nil {
		t.Fatalf("the load met errors: %v", err)
	}
	if l.ops.Load() == 0 {
		t.Fatal("the load sent no request")
	}
}

// waitSlotMap waits until px's pool has a slot map that covers every
// slot: before it, the pool answers CLUSTERDOWN, as it does without a
// migration.
func waitSlotMap(t *testing.T, px *proxy.Proxy) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); px.Snapshot().Pools[0].Cluster.SlotsCovered != hashring.ClusterSlots; {
		if time.Now().After(deadline) {
			t.Fatalf("no slot map: %+v", px.Snapshot().Pools[0].Cluster)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitMigration waits until px's pool has scanned every old server.
func waitMigration(t *testing.T, px *proxy.Proxy, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for px.Snapshot().Pools[0].MigrationPending != 0 {
		if time.Since(start) > limit {
			ps := px.Snapshot().Pools[0]
			t.Fatalf("migration not complete after %v: pending %d, keys_migrated %d, errors %d",
				limit, ps.MigrationPending, ps.KeysMigrated, ps.MigrationErrors)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// checkInCluster checks that every key of o and every key the load wrote
// is on its slot's primary in c with its value, the keys of o with their
// TTL (PTTL within what the time since the filling allows) or none, and
// that the old servers hold nothing.
func checkInCluster(t *testing.T, c *testservers.Cluster, o *oldPool, l *migrateLoad) {
	t.Helper()
	for _, b := range o.backends {
		if d := proxytest.Dbsize(t, b.Addr); d != 0 {
			t.Errorf("old server %s still holds %d keys", b.Addr, d)
		}
	}
	type check struct {
		key, want string
		cmd       []string
		ttl       int64 // -1: none
	}
	byOwner := map[string][]check{}
	add := func(k string, ttl int64, want string, cmd ...string) {
		owner := c.Owner(hashring.ClusterSlot([]byte(k))).Addr
		byOwner[owner] = append(byOwner[owner], check{key: k, want: want, cmd: cmd, ttl: ttl})
	}
	for i := range o.n {
		k, v := o.key(i), strconv.Itoa(i)
		ttl := int64(-1)
		if hasTTL(i) {
			ttl = cmigTTL(i)
		}
		switch i % 5 {
		case 0:
			want := proxytest.Bulk("v" + v)
			if w, ok := l.last[k]; ok {
				want = proxytest.Bulk(w)
			}
			add(k, ttl, want, "GET", k)
		case 1:
			add(k, ttl, proxytest.Array(proxytest.Bulk("f1"), proxytest.Bulk(v), proxytest.Bulk("f2"), proxytest.Bulk("x")), "HGETALL", k)
		case 2:
			add(k, ttl, proxytest.Array(proxytest.Bulk("a"), proxytest.Bulk("b"), proxytest.Bulk(v)), "LRANGE", k, "0", "-1")
		case 3:
			add(k, ttl, proxytest.Array(proxytest.Bulk(v), proxytest.Bulk("m1"), proxytest.Bulk("m2")), "SORT", k, "ALPHA")
		case 4:
			add(k, ttl, proxytest.Array(proxytest.Bulk("a"), proxytest.Bulk("1"), proxytest.Bulk("b"), proxytest.Bulk(v)),
				"ZRANGE", k, "0", "-1", "WITHSCORES")
		}
	}
	news := 0
	for k, v := range l.last {
		if strings.Contains(k, "new:") {
			add(k, -1, proxytest.Bulk(v), "GET", k)
			news++
		}
	}
	if news == 0 {
		t.Error("the load wrote no new key")
	}
	checked := 0
	for owner, checks := range byOwner {
		var cmds [][]string
		for _, ck := range checks {
			cmds = append(cmds, ck.cmd, []string{"PTTL", ck.key})
		}
		before := time.Now()
		got := proxytest.Pipeline(t, owner, cmds)
		after := time.Now()
		for j, ck := range checks {
			if got[2*j] != ck.want {
				t.Fatalf("%s on its owner %s: %q, want %q", ck.key, owner, got[2*j], ck.want)
			}
			pttl, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(got[2*j+1], ":")), 10, 64)
			if err != nil {
				t.Fatalf("PTTL %s: %q", ck.key, got[2*j+1])
			}
			if ck.ttl < 0 {
				if pttl != -1 {
					t.Fatalf("%s: PTTL %d, want -1 (no TTL)", ck.key, pttl)
				}
				checked++
				continue
			}
			// A MIGRATE carries the TTL left, which the target counts from
			// when it restores the key: a few ms more, at most.
			hi := ck.ttl - before.Sub(o.filled[1]).Milliseconds() + 5
			lo := ck.ttl - after.Sub(o.filled[0]).Milliseconds() - 1000
			if pttl < lo || pttl > hi {
				t.Fatalf("%s: PTTL %d, want %d..%d (TTL %d set at filling)", ck.key, pttl, lo, hi, ck.ttl)
			}
			checked++
		}
	}
	if want := o.n + news; checked != want {
		t.Fatalf("checked %d keys, want %d", checked, want)
	}
}

// TestClusterMigrate moves a nutcracker pool of 3 redis-servers (5,000
// keys of five types placed by ketama, a third with a TTL) into a Redis
// Cluster through a cluster pool with migrate_from, while 4 writers set
// and read back keys of their own and read the others: every read
// returns the latest write and no request fails; at the end every key
// is on its slot's primary with its value and TTL, none is left on the
// old servers, and keys_migrated counts each key once.
func TestClusterMigrate(t *testing.T) {
	c := testservers.SharedCluster(t)
	const n = 5000
	o := fillOldPool(t, "cmig:", n)
	listen := proxytest.FreeListen(t)
	px := proxytest.StartProxy(t, proxytest.ClusterYAML("cluster", listen, []string{c.Nodes[0].Addr},
		"migrate_rate: 2500", o.migrateFrom()))
	waitSlotMap(t, px)
	l := startMigrateLoad(t, listen, o, 4, true)
	took := waitMigration(t, px, 30*time.Second)
	time.Sleep(100 * time.Millisecond)
	l.halt(t)
	ps := px.Snapshot().Pools[0]
	t.Logf("%d keys moved in %v, %d requests meanwhile, migration_errors %d", ps.KeysMigrated,
		took.Round(time.Millisecond), l.ops.Load(), ps.MigrationErrors)
	if ps.KeysMigrated != n || ps.MigrationErrors != 0 || ps.MigrationPending != 0 || !ps.MigrationStarted {
		t.Errorf("keys_migrated %d, migration_errors %d, migration_pending %d, started %v; want %d, 0, 0, true",
			ps.KeysMigrated, ps.MigrationErrors, ps.MigrationPending, ps.MigrationStarted, n)
	}
	if cs := ps.Cluster; cs.Moved != 0 || cs.Ask != 0 || cs.RetriesExhausted != 0 {
		t.Errorf("cluster counters %+v: want no redirect of a client's request", cs)
	}
	checkInCluster(t, c, o, l)
}

// TestClusterMigrateMoved moves a nutcracker pool into a cluster whose
// slots move while the pool's map is stale: with start_at ahead, the pool
// takes its map, 1,000 slots of one primary are then given to another
// (CLUSTER SETSLOT, as a reshard of empty slots), and at start_at the
// writers begin and the migration starts. The MIGRATEs of keys of those
// slots reach their old owner, which refuses them (MOVED, counted by
// Redis as RESTOREs rejected); the pool follows and moves them to the new
// owner: no request fails, no migration error, and every key ends on its
// slot's owner with its value and TTL.
func TestClusterMigrateMoved(t *testing.T) {
	c := testservers.NewCluster(t, testservers.ClusterOptions{Replicas: -1})
	const n = 3000
	o := fillOldPool(t, "cmoved:", n)
	start := time.Now().Add(1500 * time.Millisecond).UTC()
	listen := proxytest.FreeListen(t)
	px := proxytest.StartProxy(t, proxytest.ClusterYAML("cluster", listen, []string{c.Nodes[0].Addr},
		"migrate_rate: 3000", o.migrateFrom("start_at: "+start.Format(time.RFC3339Nano))))
	waitSlotMap(t, px)
	src := c.Owner(0)
	var dst *testservers.ClusterNode
	for _, p := range c.Primaries() {
		if p != src {
			dst = p
			break
		}
	}
	const moved = 1000
	first := c.Slots(src)[0][0]
	setSlots := func(node *testservers.ClusterNode, args ...string) {
		t.Helper()
		var cmds [][]string
		for s := first; s < first+moved; s++ {
			cmds = append(cmds, append([]string{"CLUSTER", "SETSLOT", strconv.Itoa(s)}, args...))
		}
		for _, rep := range proxytest.Texts(t, node.Addr, cmds) {
			if rep != "OK" && rep != "+OK" {
				t.Fatalf("%s CLUSTER SETSLOT %v: %q", node.Addr, args, rep)
			}
		}
	}
	setSlots(dst, "IMPORTING", src.ID)
	setSlots(src, "MIGRATING", dst.ID)
	setSlots(dst, "NODE", dst.ID)
	setSlots(src, "NODE", dst.ID)
	for _, p := range c.Primaries() {
		if p != src && p != dst {
			setSlots(p, "NODE", dst.ID)
		}
	}
	c.WaitHealthy(t, 10*time.Second)
	if c.Owner(first) != dst || c.Owner(first+moved-1) != dst {
		t.Fatalf("slots %d-%d not moved", first, first+moved-1)
	}
	if time.Now().After(start) {
		t.Fatalf("the slots moved after start_at: the test is too slow to show a stale map")
	}
	time.Sleep(time.Until(start))
	l := startMigrateLoad(t, listen, o, 4, false)
	took := waitMigration(t, px, 30*time.Second)
	time.Sleep(100 * time.Millisecond)
	l.halt(t)
	ps := px.Snapshot().Pools[0]
	rejected := restoresRejected(t, src.Addr)
	t.Logf("%d keys moved in %v after start_at, %d requests, %d RESTOREs refused by the slots' old owner, "+
		"migration_errors %d; client redirects: %d MOVED", ps.KeysMigrated, took.Round(time.Millisecond), l.ops.Load(),
		rejected, ps.MigrationErrors, ps.Cluster.Moved)
	if rejected == 0 {
		t.Error("no MIGRATE reached the slots' old owner: the test did not show a stale map")
	}
	if ps.KeysMigrated != n || ps.MigrationErrors != 0 || ps.MigrationPending != 0 {
		t.Errorf("keys_migrated %d, migration_errors %d, migration_pending %d; want %d, 0, 0",
			ps.KeysMigrated, ps.MigrationErrors, ps.MigrationPending, n)
	}
	checkInCluster(t, c, o, l)
}

// restoresRejected is the count of RESTOREs the node at addr refused
// before running them (a MOVED or ASK), from INFO commandstats.
func restoresRejected(t *testing.T, addr string) int {
	t.Helper()
	info := proxytest.Command(t, addr, "INFO", "commandstats")
	for _, line := range strings.Split(info, "\r\n") {
		if !strings.HasPrefix(line, "cmdstat_restore:") {
			continue
		}
		for _, f := range strings.Split(strings.TrimPrefix(line, "cmdstat_restore:"), ",") {
			if v, ok := strings.CutPrefix(f, "rejected_calls="); ok {
				n, _ := strconv.Atoi(v)
				return n
			}
		}
	}
	return 0
}

// TestClusterMigrateReload runs the procedure on a cluster pool already
// serving: a reload adds migrate_from (the old servers join the pool's
// servers and the mover starts), writers run from then on, and once
// migration_pending is 0 a reload removes it, under the writers: the old
// servers leave, and every key is in the cluster.
func TestClusterMigrateReload(t *testing.T) {
	c := testservers.SharedCluster(t)
	const n = 600
	o := fillOldPool(t, fmt.Sprintf("creload%d", time.Now().UnixNano()), n)
	listen := proxytest.FreeListen(t)
	seeds := []string{c.Nodes[0].Addr}
	px := proxytest.StartProxy(t, proxytest.ClusterYAML("cluster", listen, seeds))
	waitSlotMap(t, px)
	if got := proxytest.Command(t, listen, "GET", o.key(0)); got != "(nil)" {
		t.Fatalf("GET %s before the migration: %q, want nil (it is on an old server)", o.key(0), got)
	}
	applyYAML(t, px, proxytest.ClusterYAML("cluster", listen, seeds, "migrate_rate: 2000", o.migrateFrom()))
	if ps := px.Snapshot().Pools[0]; len(ps.Servers) != 3+len(o.backends) || ps.MigrationPending != int64(len(o.backends)) {
		t.Fatalf("after adding migrate_from: %d servers, migration_pending %d; want the primaries and old servers, %d",
			len(ps.Servers), ps.MigrationPending, len(o.backends))
	}
	l := startMigrateLoad(t, listen, o, 2, true)
	waitMigration(t, px, 30*time.Second)
	applyYAML(t, px, proxytest.ClusterYAML("cluster", listen, seeds, "migrate_rate: 2000"))
	time.Sleep(100 * time.Millisecond)
	l.halt(t)
	ps := px.Snapshot().Pools[0]
	if len(ps.Servers) != 3 || ps.MigrationPending != 0 || ps.KeysMigrated != n || ps.MigrationErrors != 0 {
		t.Fatalf("after removing migrate_from: %d servers, migration_pending %d, keys_migrated %d, errors %d; "+
			"want 3 primaries, 0, %d, 0", len(ps.Servers), ps.MigrationPending, ps.KeysMigrated, ps.MigrationErrors, n)
	}
	checkInCluster(t, c, o, l)
}
