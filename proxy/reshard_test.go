package proxy_test

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/hashring"
	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/proxy"
)

// reshardKey is what the clients of a resharding test last had
// acknowledged for one key: its value (a number, so INCR works on every
// key) and whether it has a TTL.
type reshardKey struct {
	val int64
	ttl bool
}

// reshardLoad is clients that each own a share of the keys and write and
// read them through the proxy with SET, INCR, GET, MSET, MGET and EXPIRE,
// checking every reply against what they wrote.
type reshardLoad struct {
	keys  []string
	state []reshardKey // by key index; each client writes only its own
	stop  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	wrong []string
	ops   int64
}

const reshardClients = 4

// fill writes every key through addr and returns the keys' state.
func fillKeys(t *testing.T, addr string, n int) *reshardLoad {
	t.Helper()
	l := &reshardLoad{state: make([]reshardKey, n)}
	var cmds [][]string
	for i := range n {
		// Keys differ in their first bytes: nutcracker's fnv1a_64 puts keys
		// that differ only at their end next to each other on the ring.
		l.keys = append(l.keys, fmt.Sprintf("%d:key", i))
		l.state[i].val = int64(i)
		cmd := []string{"SET", l.keys[i], strconv.Itoa(i)}
		if i%3 == 0 {
			cmd = append(cmd, "EX", "100000")
			l.state[i].ttl = true
		}
		cmds = append(cmds, cmd)
	}
	for i, rep := range proxytest.Pipeline(t, addr, cmds) {
		if rep != "+OK\r\n" {
			t.Fatalf("SET %s: %q", l.keys[i], rep)
		}
	}
	return l
}

// run starts the clients, each with one connection to every proxy at
// addrs, which it uses in turn: with several proxies, a key is written
// through one and read through another.
func (l *reshardLoad) run(t *testing.T, addrs ...string) {
	l.stop = make(chan struct{})
	for g := range reshardClients {
		var conns []*proxytest.Conn
		for _, a := range addrs {
			c := proxytest.Dial(t, a)
			if g%2 == 1 {
				c.Hello3() // half the clients speak RESP3
			}
			conns = append(conns, c)
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			var own []int
			for i := g; i < len(l.keys); i += reshardClients {
				own = append(own, i)
			}
			for n := 0; ; n++ {
				select {
				case <-l.stop:
					return
				default:
				}
				if err := l.op(conns[n%len(conns)], rng, own); err != nil {
					l.mu.Lock()
					l.wrong = append(l.wrong, err.Error())
					l.mu.Unlock()
					if strings.Contains(err.Error(), "read") {
						return
					}
				}
				l.mu.Lock()
				l.ops++
				l.mu.Unlock()
			}
		}()
	}
}

// op sends one random request for keys of own and checks its reply.
func (l *reshardLoad) op(c *proxytest.Conn, rng *rand.Rand, own []int) error {
	i := own[rng.IntN(len(own))]
	k, st := l.keys[i], &l.state[i]
	three := []int{i, own[rng.IntN(len(own))], own[rng.IntN(len(own))]}
	if three[1] == i || three[2] == i || three[1] == three[2] {
		three = three[:1]
	}
	check := func(got, want string, args ...string) error {
		if got != want {
			return fmt.Errorf("%v: got %q, want %q", args, got, want)
		}
		return nil
	}
	do := func(want string, args ...string) error {
		got, err := doRaw(c, args...)
		if err != nil {
			return fmt.Errorf("%v: read: %w", args, err)
		}
		return check(got, want, args...)
	}
	switch rng.IntN(6) {
	case 0:
		v := rng.Int64N(1e9)
		if err := do("+OK\r\n", "SET", k, strconv.FormatInt(v, 10)); err != nil {
			return err
		}
		st.val, st.ttl = v, false
	case 1:
		if err := do(fmt.Sprintf(":%d\r\n", st.val+1), "INCR", k); err != nil {
			return err
		}
		st.val++
	case 2:
		return do(proxytest.Bulk(strconv.FormatInt(st.val, 10)), "GET", k)
	case 3:
		args := []string{"MSET"}
		vals := make([]int64, len(three))
		for j, ki := range three {
			vals[j] = rng.Int64N(1e9)
			args = append(args, l.keys[ki], strconv.FormatInt(vals[j], 10))
		}
		if err := do("+OK\r\n", args...); err != nil {
			return err
		}
		for j, ki := range three {
			l.state[ki].val, l.state[ki].ttl = vals[j], false
		}
	case 4:
		args := []string{"MGET"}
		var want []string
		for _, ki := range three {
			args = append(args, l.keys[ki])
			want = append(want, proxytest.Bulk(strconv.FormatInt(l.state[ki].val, 10)))
		}
		return do(proxytest.Array(want...), args...)
	case 5:
		if err := do(":1\r\n", "EXPIRE", k, "100000"); err != nil {
			return err
		}
		st.ttl = true
	}
	return nil
}

// halt stops the clients and fails the test on any wrong reply.
func (l *reshardLoad) halt(t *testing.T) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	for i, w := range l.wrong {
		if i == 10 {
			t.Errorf("... and %d more wrong replies", len(l.wrong)-i)
			break
		}
		t.Errorf("wrong reply: %s", w)
	}
	if l.ops == 0 {
		t.Error("the clients made no request")
	}
}

// checkPlaced asks every backend directly, after the commands of pre
// (AUTH, SELECT): each key is on exactly the backend place names, with the
// last acknowledged value and its TTL, and no backend holds anything else.
func (l *reshardLoad) checkPlaced(t *testing.T, backends []*testservers.Server, place func(key string) int, pre ...[]string) {
	t.Helper()
	cmds := append([][]string(nil), pre...)
	for _, k := range l.keys {
		cmds = append(cmds, []string{"GET", k}, []string{"PTTL", k})
	}
	cmds = append(cmds, []string{"DBSIZE"})
	total, bad := 0, 0
	for b, s := range backends {
		replies := proxytest.Pipeline(t, s.Addr, cmds)[len(pre):]
		held := 0
		for i, k := range l.keys {
			val, pttl := replies[2*i], replies[2*i+1]
			owner := place(k) == b
			want := proxytest.NilBulk
			if owner {
				want = proxytest.Bulk(strconv.FormatInt(l.state[i].val, 10))
			}
			if val != proxytest.NilBulk {
				held++
			}
			ttlOK := !owner || (l.state[i].ttl == (pttl != ":-1\r\n") && pttl != ":-2\r\n")
			if (val != want || !ttlOK) && bad < 10 {
				bad++
				t.Errorf("backend %d, key %s (owner %d): value %q, PTTL %q; want %q, TTL %v",
					b, k, place(k), val, pttl, want, l.state[i].ttl)
			}
		}
		if n := replies[len(replies)-1]; n != fmt.Sprintf(":%d\r\n", held) {
			t.Errorf("backend %d holds %q keys, %d of them ours", b, n, held)
		}
		total += held
	}
	if total != len(l.keys) {
		t.Errorf("%d keys on the backends, want %d", total, len(l.keys))
	}
}

// placer places keys as a pool of the given lines ("host:port:1") does.
func placer(t *testing.T, hc hashring.Config, lines []string) func(key string) int {
	t.Helper()
	for _, l := range lines {
		hc.Servers = append(hc.Servers, hashring.Server{Name: strings.TrimSuffix(l, ":1"), Weight: 1})
	}
	place, err := hashring.New(hc)
	if err != nil {
		t.Fatal(err)
	}
	return func(key string) int { return place.Pick([]byte(key)) }
}

// flowList renders server lines as a YAML flow list.
func flowList(lines []string) string { return "[" + strings.Join(lines, ", ") + "]" }

// applyYAML makes yaml the proxy's configuration.
func applyYAML(t *testing.T, px *proxy.Proxy, yaml string) {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	if err := px.Apply(cfg); err != nil {
		t.Fatalf("reload: %v", err)
	}
}

// waitMigrated waits up to 60 s for migration_pending 0 and returns how
// long it took.
func waitMigrated(t *testing.T, px *proxy.Proxy) time.Duration {
	t.Helper()
	start := time.Now()
	for proxytest.PoolStat(t, px, "migration_pending") != 0 {
		if time.Since(start) > 60*time.Second {
			t.Fatalf("migration_pending is %d after 60 s", proxytest.PoolStat(t, px, "migration_pending"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// reshardStep reloads px with yaml while the clients run, waits for the
// migration to complete and checks where every key is.
func reshardStep(t *testing.T, px *proxy.Proxy, l *reshardLoad, addr, yaml string,
	backends []*testservers.Server, place func(string) int) {
	t.Helper()
	before := proxytest.PoolStat(t, px, "keys_migrated")
	l.run(t, addr)
	time.Sleep(200 * time.Millisecond)
	applyYAML(t, px, yaml)
	took := waitMigrated(t, px)
	time.Sleep(200 * time.Millisecond)
	l.halt(t)
	moved := proxytest.PoolStat(t, px, "keys_migrated") - before
	t.Logf("%d keys moved in %v (%.0f keys/s), %d requests, %d migration errors", moved, took.Round(time.Millisecond),
		float64(moved)/took.Seconds(), l.ops, proxytest.PoolStat(t, px, "migration_errors"))
	if moved == 0 {
		t.Error("no key moved")
	}
	if n := proxytest.PoolStat(t, px, "migration_errors"); n != 0 {
		t.Errorf("migration_errors %d, want 0", n)
	}
	l.checkPlaced(t, backends, place)
}

// TestReshardGrowShrink fills 3 servers through a pool of 3, grows the
// pool to 4 with migrate_from while clients write and read, then shrinks
// it back to 3 the same way: after each step every key is on its owner
// only, with the last value a client had acknowledged and its TTL, and no
// client saw a wrong reply.
func TestReshardGrowShrink(t *testing.T) {
	b := proxytest.StartRedisBackends(t, 4)
	lines := proxytest.ServerLines(b, nil, nil)
	listen := proxytest.FreeListen(t)
	yaml := func(servers, from []string) string {
		p := proxytest.Pool{Servers: servers, Keys: []string{"migrate_rate: 1000000"}}
		if from != nil {
			p.Keys = append(p.Keys, "migrate_from: {servers: "+flowList(from)+"}")
		}
		return p.YAML("alpha", listen)
	}
	px := proxytest.StartProxyOpts(t, yaml(lines[:3], nil), proxy.Options{StatsAddr: "127.0.0.1:0"})
	l := fillKeys(t, listen, 20000)
	ketama := hashring.Config{Hash: "fnv1a_64", Distribution: "ketama"}
	l.checkPlaced(t, b[:3], placer(t, ketama, lines[:3]))
	if proxytest.PoolStat(t, px, "migration_pending") != 0 {
		t.Fatal("migration_pending is not 0 without a migration")
	}

	t.Log("grow to 4")
	reshardStep(t, px, l, listen, yaml(lines, lines[:3]), b, placer(t, ketama, lines))
	applyYAML(t, px, yaml(lines, nil))

	t.Log("shrink to 3")
	grown := placer(t, ketama, lines[:3])
	reshardStep(t, px, l, listen, yaml(lines[:3], lines), b, grown)
}

// TestReshardKetamaToSlots moves a ketama pool onto distribution jump over
// the same servers with migrate_from: {distribution: ketama}, under load.
func TestReshardKetamaToSlots(t *testing.T) {
	b := proxytest.StartRedisBackends(t, 3)
	lines := proxytest.ServerLines(b, nil, nil)
	listen := proxytest.FreeListen(t)
	px := proxytest.StartProxyOpts(t, proxytest.Pool{Servers: lines}.YAML("alpha", listen), proxy.Options{StatsAddr: "127.0.0.1:0"})
	l := fillKeys(t, listen, 5000)
	jump := proxytest.Pool{Servers: lines, Distribution: "jump",
		Keys: []string{"migrate_rate: 1000000", "migrate_from: {distribution: ketama}"}}
	reshardStep(t, px, l, listen, jump.YAML("alpha", listen), b, placer(t, hashring.Config{Distribution: "jump"}, lines))
}

// TestReshardMigrateFails grows a pool onto a server that is down: a
// request for a key that must move there is answered with the MIGRATE's
// error and counted, the key stays readable on its old owner, and once
// the server is back the key moves and the migration completes.
func TestReshardMigrateFails(t *testing.T) {
	b := proxytest.StartRedisBackends(t, 3)
	lines := proxytest.ServerLines(b, nil, nil)
	listen := proxytest.FreeListen(t)
	px := proxytest.StartProxyOpts(t, proxytest.Pool{Servers: lines[:2]}.YAML("alpha", listen), proxy.Options{StatsAddr: "127.0.0.1:0"})
	l := fillKeys(t, listen, 300)
	oldPlace := placer(t, hashring.Config{}, lines[:2])
	newPlace := placer(t, hashring.Config{}, lines)
	key := ""
	for _, k := range l.keys {
		if newPlace(k) == 2 {
			key = k
			break
		}
	}
	if key == "" {
		t.Fatal("no key moves to the new server")
	}
	i, _ := strconv.Atoi(strings.TrimSuffix(key, ":key"))
	b[2].Kill()
	applyYAML(t, px, proxytest.Pool{Servers: lines,
		Keys: []string{"migrate_from: {servers: " + flowList(lines[:2]) + "}"}}.YAML("alpha", listen))
	c := proxytest.Dial(t, listen)
	if got := c.Do("GET", key); !strings.HasPrefix(got, "-ERR migrating key '"+key+"' from ") || !strings.Contains(got, "IOERR") {
		t.Errorf("GET %s while its new owner is down: %q, want -ERR migrating key ... IOERR", key, got)
	}
	if n := proxytest.PoolStat(t, px, "migration_errors"); n == 0 {
		t.Error("migration_errors is 0 after a failed MIGRATE")
	}
	if n := proxytest.PoolStat(t, px, "migration_pending"); n == 0 {
		t.Error("migration_pending is 0 while keys cannot move")
	}
	want := strconv.FormatInt(l.state[i].val, 10)
	if got, err := testservers.Do(b[oldPlace(key)].Addr, "GET", key); err != nil || got != want {
		t.Errorf("GET %s on its old owner: %q, %v; want %q", key, got, err, want)
	}
	b[2].Restart()
	if got := c.Do("GET", key); got != proxytest.Bulk(want) {
		t.Errorf("GET %s once its new owner is back: %q, want %q", key, got, proxytest.Bulk(want))
	}
	waitMigrated(t, px)
	l.checkPlaced(t, b, newPlace)
}

// TestReshardOneMigratePerKey sends 8 requests for one key from 8 clients
// while its new owner is paused, so its move cannot finish: they wait on
// one MIGRATE (the mover may send one more), and once the server goes on
// every client reads the value from the new owner.
func TestReshardOneMigratePerKey(t *testing.T) {
	b := proxytest.StartRedisBackends(t, 3)
	lines := proxytest.ServerLines(b, nil, nil)
	listen := proxytest.FreeListen(t)
	px := proxytest.StartProxyOpts(t, proxytest.Pool{Servers: lines[:2]}.YAML("alpha", listen), proxy.Options{StatsAddr: "127.0.0.1:0"})
	oldPlace, newPlace := placer(t, hashring.Config{}, lines[:2]), placer(t, hashring.Config{}, lines)
	key := "0:key"
	for i := 1; newPlace(key) != 2; i++ {
		key = strconv.Itoa(i) + ":key"
	}
	if got := proxytest.Dial(t, listen).Do("SET", key, "v"); got != "+OK\r\n" {
		t.Fatalf("SET: %q", got)
	}
	var clients []*proxytest.Conn
	for range 8 {
		clients = append(clients, proxytest.Dial(t, listen))
	}
	proxytest.StopServer(t, b[2])
	applyYAML(t, px, proxytest.Pool{Servers: lines,
		Keys: []string{"migrate_from: {servers: " + flowList(lines[:2]) + "}"}}.YAML("alpha", listen))
	results := make(chan string, len(clients))
	for _, c := range clients {
		go func() {
			r, err := c.TryDo(30*time.Second, "GET", key)
			if err != nil {
				results <- err.Error()
				return
			}
			results <- r.Raw
		}()
	}
	time.Sleep(time.Second) // the requests arrive while the MIGRATE cannot finish
	b[2].Continue()
	for range clients {
		if got := <-results; got != proxytest.Bulk("v") {
			t.Errorf("GET %s: %q, want %q", key, got, proxytest.Bulk("v"))
		}
	}
	calls := proxytest.CommandCalls(t, b[oldPlace(key)], "migrate")
	if calls < 1 || calls > 2 {
		t.Errorf("the old owner ran %d MIGRATEs, want 1 from the clients and at most 1 from the mover", calls)
	}
	if got, _ := testservers.Do(b[2].Addr, "GET", key); got != "v" {
		t.Errorf("GET %s on its new owner: %q", key, got)
	}
	waitMigrated(t, px)
}

// TestReshardResume grows a pool whose servers want a password and whose
// data is in database 1, at 200 keys per second, closes the proxy midway
// and starts another with the same file: it moves the rest (MIGRATE with
// AUTH and the database), and every key ends on its owner.
func TestReshardResume(t *testing.T) {
	b := proxytest.StartRedisBackends(t, 3, "--requirepass", "pw")
	lines := proxytest.ServerLines(b, nil, nil)
	listen := proxytest.FreeListen(t)
	p := proxytest.Pool{Servers: lines[:2], Auth: "pw", DB: 1}
	px := proxytest.StartProxyOpts(t, p.YAML("alpha", listen), proxy.Options{StatsAddr: "127.0.0.1:0"})
	c := proxytest.Dial(t, listen)
	if got := c.Do("AUTH", "pw"); got != "+OK\r\n" {
		t.Fatalf("AUTH: %q", got)
	}
	l := &reshardLoad{}
	for i := range 3000 {
		l.keys = append(l.keys, fmt.Sprintf("%d:key", i))
		l.state = append(l.state, reshardKey{val: int64(i), ttl: i%2 == 0})
		if got := c.Do("SET", l.keys[i], strconv.Itoa(i)); got != "+OK\r\n" {
			t.Fatalf("SET: %q", got)
		}
		if l.state[i].ttl {
			c.Do("PEXPIRE", l.keys[i], "100000000")
		}
	}
	p.Servers = lines
	p.Keys = []string{"migrate_rate: 200", "migrate_from: {servers: " + flowList(lines[:2]) + "}"}
	applyYAML(t, px, p.YAML("alpha", listen))
	time.Sleep(time.Second)
	moved, pending := proxytest.PoolStat(t, px, "keys_migrated"), proxytest.PoolStat(t, px, "migration_pending")
	if moved == 0 || moved > 600 || pending == 0 {
		t.Fatalf("after 1 s at 200 keys/s: keys_migrated %d, migration_pending %d; want 1..600 and > 0", moved, pending)
	}
	proxytest.CloseProxy(t, px)
	p.Keys[0] = "migrate_rate: 1000000"
	px = proxytest.StartProxyOpts(t, p.YAML("alpha", listen), proxy.Options{StatsAddr: "127.0.0.1:0"})
	waitMigrated(t, px)
	t.Logf("%d keys moved before the restart, %d after", moved, proxytest.PoolStat(t, px, "keys_migrated"))
	l.checkPlaced(t, b, placer(t, hashring.Config{}, lines), []string{"AUTH", "pw"}, []string{"SELECT", "1"})
}

// TestReshardThroughProxy grows a pool whose first server cannot MIGRATE
// (the command renamed away, as some hosted Redis do): its keys move
// through the proxy (DUMP, PTTL, RESTORE REPLACE, DEL) while clients
// write and read, those of the other server with MIGRATE; every key ends
// on its owner with its last value and TTL, nothing counts as an error.
func TestReshardThroughProxy(t *testing.T) {
	b := []*testservers.Server{testservers.Redis(t, "--rename-command", "MIGRATE", ""),
		testservers.Redis(t), testservers.Redis(t)}
	lines := proxytest.ServerLines(b, nil, nil)
	listen := proxytest.FreeListen(t)
	px := proxytest.StartProxyOpts(t, proxytest.Pool{Servers: lines[:2]}.YAML("alpha", listen), proxy.Options{StatsAddr: "127.0.0.1:0"})
	l := fillKeys(t, listen, 5000)
	grown := proxytest.Pool{Servers: lines, Keys: []string{"migrate_rate: 1000000", "migrate_from: {servers: " + flowList(lines[:2]) + "}"}}
	ketama := hashring.Config{Hash: "fnv1a_64", Distribution: "ketama"}
	reshardStep(t, px, l, listen, grown.YAML("alpha", listen), b, placer(t, ketama, lines))
	if n := proxytest.CommandCalls(t, b[0], "dump"); n == 0 {
		t.Error("no DUMP on the server that cannot MIGRATE")
	}
	if n := proxytest.CommandCalls(t, b[2], "restore"); n == 0 {
		t.Error("no RESTORE on the new server")
	}
	if n := proxytest.CommandCalls(t, b[1], "migrate"); n == 0 {
		t.Error("no MIGRATE from the server that can")
	}
	if n := proxytest.CommandCalls(t, b[1], "dump"); n != 0 {
		t.Errorf("%d DUMPs on the server that can MIGRATE", n)
	}
}

// TestReshardEjectDuringMigration grows a pool with auto_eject_hosts and
// eject_mode rehash onto a server that dies midway: while it is ejected
// its keys fail fast instead of moving to another server (where neither
// the clients nor the mover would look for them once it is back), the
// other keys are served, and once it is back the migration completes
// with every key on its owner.
func TestReshardEjectDuringMigration(t *testing.T) {
	b := proxytest.StartRedisBackends(t, 4)
	lines := proxytest.ServerLines(b, nil, nil)
	listen := proxytest.FreeListen(t)
	eject := []string{"auto_eject_hosts: true", "server_failure_limit: 1", "server_retry_timeout: 300", "timeout: 400"}
	px := proxytest.StartProxyOpts(t, proxytest.Pool{Servers: lines[:3], Keys: eject}.YAML("alpha", listen), proxy.Options{StatsAddr: "127.0.0.1:0"})
	l := fillKeys(t, listen, 2000)
	ketama := hashring.Config{Hash: "fnv1a_64", Distribution: "ketama"}
	newPlace := placer(t, ketama, lines)
	b[3].Kill()
	applyYAML(t, px, proxytest.Pool{Servers: lines, Keys: append(eject, "migrate_rate: 500",
		"migrate_from: {servers: "+flowList(lines[:3])+"}")}.YAML("alpha", listen))
	c := proxytest.Dial(t, listen)
	check := func(round int) {
		t.Helper()
		bad := 0
		for i, k := range l.keys {
			got := c.Do("GET", k)
			want := proxytest.Bulk(strconv.FormatInt(l.state[i].val, 10))
			if newPlace(k) == 3 {
				if !strings.HasPrefix(got, "-") && bad < 5 {
					bad++
					t.Errorf("round %d: GET %s while its new owner is down: %q, want an error", round, k, got)
				}
			} else if got != want && bad < 5 {
				bad++
				t.Errorf("round %d: GET %s: %q, want %q", round, k, got, want)
			}
		}
	}
	check(1)
	if n := proxytest.PoolStat(t, px, "server_ejects"); n == 0 {
		t.Fatal("the dead server was not ejected")
	}
	check(2) // while it is ejected
	b[3].Restart()
	took := waitMigrated(t, px)
	t.Logf("migration completed %v after the server came back", took.Round(time.Millisecond))
	l.checkPlaced(t, b, newPlace)
}

// TestReshardReloadMidway reloads the same file while a slow migration
// runs under load, then one with another migrate_rate: the migration goes
// on from the new routing (its mover scans the old owners again), and
// completes with every key on its owner.
func TestReshardReloadMidway(t *testing.T) {
	b := proxytest.StartRedisBackends(t, 3)
	lines := proxytest.ServerLines(b, nil, nil)
	listen := proxytest.FreeListen(t)
	px := proxytest.StartProxyOpts(t, proxytest.Pool{Servers: lines[:2]}.YAML("alpha", listen), proxy.Options{StatsAddr: "127.0.0.1:0"})
	l := fillKeys(t, listen, 20000)
	grow := func(rate string) string {
		return proxytest.Pool{Servers: lines, Keys: []string{"migrate_rate: " + rate,
			"migrate_from: {servers: " + flowList(lines[:2]) + "}"}}.YAML("alpha", listen)
	}
	l.run(t, listen)
	applyYAML(t, px, grow("100"))
	time.Sleep(time.Second)
	slow := proxytest.PoolStat(t, px, "keys_migrated")
	applyYAML(t, px, grow("100")) // the same file: nothing changes
	if n := proxytest.PoolStat(t, px, "migration_pending"); n == 0 {
		t.Fatal("the migration completed at 100 keys/s within a second")
	}
	applyYAML(t, px, grow("1000000"))
	took := waitMigrated(t, px)
	time.Sleep(100 * time.Millisecond)
	l.halt(t)
	t.Logf("%d keys moved in the first second, the rest %v after the reload; %d requests", slow, took.Round(time.Millisecond), l.ops)
	if slow == 0 {
		t.Error("no key moved in the first second")
	}
	if n := proxytest.PoolStat(t, px, "migration_errors"); n != 0 {
		t.Errorf("migration_errors %d", n)
	}
	l.checkPlaced(t, b, placer(t, hashring.Config{Hash: "fnv1a_64", Distribution: "ketama"}, lines))
}
