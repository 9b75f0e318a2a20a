package proxy_test

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/hashring"
	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/proxy"
)

// failoverShard is one shard under Sentinel: its name, and its primary and
// replica as started (their roles swap on a failover).
type failoverShard struct {
	name             string
	primary, replica *testservers.Server
}

// startSentinels starts 2 shards, each a primary with one replica, and 3
// Sentinels watching them.
func startSentinels(t *testing.T) ([]failoverShard, []*testservers.Server) {
	t.Helper()
	return startSentinelsWith(t, testservers.SentinelOptions{DownAfter: time.Second, FailoverTimeout: 3 * time.Second})
}

// sentinelPoolYAML is a pool over the shards' masters by name, following sents;
// lineAddr gives each line's address (the Sentinels' answer replaces it).
func sentinelPoolYAML(listen string, shards []failoverShard, sents []*testservers.Server, lineAddr func(failoverShard) string, keys ...string) string {
	var lines, sentinels []string
	for _, sh := range shards {
		lines = append(lines, lineAddr(sh)+":1 "+sh.name)
	}
	for _, s := range sents {
		sentinels = append(sentinels, s.Addr)
	}
	return proxytest.Pool{Servers: lines, Keys: append([]string{"sentinels: [" + strings.Join(sentinels, ", ") + "]", "timeout: 1000"},
		keys...)}.YAML("alpha", listen)
}

// failoverWriter is clients writing distinct keys through the proxy, recording
// every acknowledged write and, per shard, when writes failed and
// succeeded.
type failoverWriter struct {
	shardOf func(key string) int
	stop    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	acked   map[string]ackedWrite
	events  [2][]failoverEvent
	samples []string
}

type ackedWrite struct {
	val string
	at  time.Time
}

type failoverEvent struct {
	at time.Time
	ok bool
}

func newFailoverWriter(shards []failoverShard) *failoverWriter {
	var names []string
	for _, sh := range shards {
		names = append(names, sh.name+":1")
	}
	place := placerNames(names)
	return &failoverWriter{shardOf: place, acked: map[string]ackedWrite{}, stop: make(chan struct{})}
}

// placerNames places keys as a ketama fnv1a_64 pool of the given names.
func placerNames(names []string) func(string) int {
	hc := hashring.Config{Hash: "fnv1a_64", Distribution: "ketama"}
	for _, n := range names {
		hc.Servers = append(hc.Servers, hashring.Server{Name: strings.TrimSuffix(n, ":1"), Weight: 1})
	}
	place, err := hashring.New(hc)
	if err != nil {
		panic(err)
	}
	return func(key string) int { return place.Pick([]byte(key)) }
}

// run starts 4 writers on addr.
func (w *failoverWriter) run(t *testing.T, addr string) {
	for g := range 4 {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			var c *proxytest.Conn
			defer func() {
				if c != nil {
					c.Net.Close()
				}
			}()
			for n := 0; ; n++ {
				select {
				case <-w.stop:
					return
				default:
				}
				if c == nil {
					var err error
					if c, err = proxytest.TryDial(t, addr); err != nil {
						time.Sleep(10 * time.Millisecond)
						continue
					}
					if g%2 == 1 { // half the writers speak RESP3
						if r, err := c.TryDo(3*time.Second, "HELLO", "3"); err != nil || r.Kind != '%' {
							c.Net.Close()
							c = nil
							time.Sleep(10 * time.Millisecond)
							continue
						}
					}
				}
				key, val := fmt.Sprintf("w%d:%d", g, n), strconv.Itoa(n)
				r, err := c.TryDo(3*time.Second, "SET", key, val)
				now := time.Now()
				ok := err == nil && r.Raw == "+OK\r\n"
				w.mu.Lock()
				w.events[w.shardOf(key)] = append(w.events[w.shardOf(key)], failoverEvent{now, ok})
				if ok {
					w.acked[key] = ackedWrite{val, now}
				} else if len(w.samples) < 20 {
					w.samples = append(w.samples, fmt.Sprintf("%s %s: %q %v", now.Format("15:04:05.000"), key, r.Raw, err))
				}
				w.mu.Unlock()
				if err != nil {
					c.Net.Close()
					c = nil
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
}

func (w *failoverWriter) halt() {
	close(w.stop)
	w.wg.Wait()
}

// recovered returns, for shard, how long after from its writes succeeded
// again for good (the first success after its last failure), and how many
// failed after from.
func (w *failoverWriter) recovered(shard int, from time.Time) (time.Duration, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var lastFail time.Time
	fails := 0
	for _, e := range w.events[shard] {
		if e.at.After(from) && !e.ok {
			lastFail, fails = e.at, fails+1
		}
	}
	if fails == 0 {
		return 0, 0
	}
	for _, e := range w.events[shard] {
		if e.at.After(lastFail) && e.ok {
			return e.at.Sub(from), fails
		}
	}
	return -1, fails
}

// failures returns the writes to shard that failed after from.
func (w *failoverWriter) failures(shard int, from time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, e := range w.events[shard] {
		if e.at.After(from) && !e.ok {
			n++
		}
	}
	return n
}

// check reads every acknowledged write through addr: a write missing or
// older is allowed only when acknowledged before lostBefore (by an old
// primary, not yet replicated when it failed); it returns how many such.
func (w *failoverWriter) check(t *testing.T, addr string, lostBefore time.Time) int {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	var keys []string
	for k := range w.acked {
		keys = append(keys, k)
	}
	var cmds [][]string
	for _, k := range keys {
		cmds = append(cmds, []string{"GET", k})
	}
	lost, bad := 0, 0
	for i, rep := range proxytest.Pipeline(t, addr, cmds) {
		a := w.acked[keys[i]]
		if rep == proxytest.Bulk(a.val) {
			continue
		}
		if a.at.Before(lostBefore) {
			lost++
			continue
		}
		if bad++; bad <= 10 {
			t.Errorf("GET %s: %q, want %q (acknowledged at %s, after %s)", keys[i], rep, proxytest.Bulk(a.val),
				a.at.Format("15:04:05.000"), lostBefore.Format("15:04:05.000"))
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d acknowledged writes lost", bad, len(keys))
	}
	return lost
}

// serverStat reads a field of server name in pool alpha's stats.
func serverStat(t *testing.T, px *proxy.Proxy, name, field string) any {
	t.Helper()
	doc := proxytest.FetchStats(t, px.StatsAddr().String())
	pool, _ := doc["alpha"].(map[string]any)
	srv, _ := pool[name].(map[string]any)
	return srv[field]
}

// waitFailovers polls the stats until server name has made want
// failovers, and returns when it saw them.
func waitFailovers(t *testing.T, px *proxy.Proxy, name string, want int, d time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if n, _ := serverStat(t, px, name, "failovers").(float64); int(n) >= want {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: failovers %v after %v, want %d", name, serverStat(t, px, name, "failovers"), d, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFailoverUnderLoad: writers run through the proxy while one shard's
// primary is SIGKILLed; Sentinel promotes its replica and the proxy
// follows: the time until writes to that shard succeed again is printed,
// writes to the other shard never fail, and every acknowledged write is
// there afterwards but those the dead primary acknowledged and had not
// replicated (printed). Then the killed server comes back as a replica, a
// failover is forced back (SENTINEL FAILOVER), and the proxy follows again.
func TestFailoverUnderLoad(t *testing.T) {
	shards, sents := startSentinels(t)
	listen := proxytest.FreeListen(t)
	px := proxytest.StartProxyOpts(t, sentinelPoolYAML(listen, shards, sents, func(sh failoverShard) string { return sh.primary.Addr }),
		proxy.Options{StatsAddr: "127.0.0.1:0"})
	w := newFailoverWriter(shards)
	w.run(t, listen)
	defer func() {
		select {
		case <-w.stop:
		default:
			w.halt()
		}
	}()
	time.Sleep(time.Second)

	kill := time.Now()
	reported := whenTrue(func() bool { return anySentinelReports(sents, "shard1", shards[0].replica.Addr) })
	moved := whenTrue(func() bool { return serverStat(t, px, "shard1", "failovers") == float64(1) })
	shards[0].primary.Kill()
	dead := time.Now()
	promoted := testservers.WaitMaster(t, sents, "shard1", shards[0].primary.Addr, 30*time.Second)
	if promoted != shards[0].replica.Addr {
		t.Fatalf("sentinels promoted %s, want the replica %s", promoted, shards[0].replica.Addr)
	}
	waitFailovers(t, px, "shard1", 1, 10*time.Second)
	time.Sleep(time.Second)
	t.Logf("the Sentinels' log, from the kill: %s", sentinelTimeline(t, sents, "shard1", kill))
	back, failed := w.recovered(0, kill)
	t.Logf("failover timeline after SIGKILL of shard1's primary (down-after-milliseconds 1000): the proxy moved to the "+
		"promoted replica after %v, writes to shard1 succeed again after %v (%d failed meanwhile, the last after %v; "+
		"from then until the move they were held), a Sentinel answers get-master-addr-by-name with the replica after %v",
		(<-moved).Sub(kill).Round(time.Millisecond), back.Round(time.Millisecond), failed,
		w.lastFailure(0, kill).Sub(kill).Round(time.Millisecond), (<-reported).Sub(kill).Round(time.Millisecond))
	if back < 0 {
		t.Fatalf("writes to shard1 still fail: %v", w.samples)
	}
	if n := w.failures(1, time.Time{}); n != 0 {
		t.Errorf("%d writes to shard2 failed: %v", n, w.samples)
	}
	if got := serverStat(t, px, "shard1", "primary"); got != promoted {
		t.Errorf("stats: shard1 primary %v, want %s", got, promoted)
	}
	if got := serverStat(t, px, "shard2", "failovers"); got != float64(0) {
		t.Errorf("stats: shard2 failovers %v, want 0", got)
	}
	// A reply the primary sent just before it died reaches its client a
	// moment after (the proxy reads and forwards it after the kill), and
	// writes to shard1 succeed again only once the replica is promoted,
	// over a second after: a write acknowledged until 250 ms after the
	// death was acknowledged by the dead primary.
	lost := w.check(t, listen, dead.Add(250*time.Millisecond))
	t.Logf("%d acknowledged writes lost: acknowledged by the killed primary before it replicated them", lost)

	t.Log("failback: the killed server returns as a replica, and a failover is forced")
	shards[0].primary.RestartReplicaOf(promoted)
	forced := time.Now()
	moved = whenTrue(func() bool { return serverStat(t, px, "shard1", "failovers") == float64(2) })
	testservers.Failover(t, sents[0], "shard1", 30*time.Second)
	again := testservers.WaitMaster(t, sents, "shard1", promoted, 30*time.Second)
	if again != shards[0].primary.Addr {
		t.Fatalf("sentinels promoted %s, want %s", again, shards[0].primary.Addr)
	}
	waitFailovers(t, px, "shard1", 2, 10*time.Second)
	switched := <-moved
	time.Sleep(time.Second)
	back, failed = w.recovered(0, forced)
	t.Logf("forced failover (SENTINEL FAILOVER): the proxy moved after %v; writes to shard1 failed %d times, all succeed "+
		"again after %v", switched.Sub(forced).Round(time.Millisecond), failed, back.Round(time.Millisecond))
	if back < 0 {
		t.Fatalf("writes to shard1 still fail after the failback: %v", w.samples)
	}
	w.halt()
	if n := w.failures(1, time.Time{}); n != 0 {
		t.Errorf("%d writes to shard2 failed: %v", n, w.samples)
	}
	if got := serverStat(t, px, "shard1", "primary"); got != again {
		t.Errorf("stats: shard1 primary %v, want %s", got, again)
	}
	lost = w.check(t, listen, switched)
	t.Logf("%d acknowledged writes lost in the failback: acknowledged by the demoted primary before the proxy switched", lost)
}

// TestSentinelOutage: with one Sentinel down at start the proxy asks
// another (the server line's address is dead, so only an answer makes it
// work); with all Sentinels down it keeps the last known primaries and
// serves; once they are back it subscribes again and follows a failover.
func TestSentinelOutage(t *testing.T) {
	shards, sents := startSentinels(t)
	sents[0].Kill()
	dead := proxytest.FreeListen(t)
	listen := proxytest.FreeListen(t)
	px := proxytest.StartProxyOpts(t, sentinelPoolYAML(listen, shards, sents, func(failoverShard) string { return dead }),
		proxy.Options{StatsAddr: "127.0.0.1:0"})
	c := proxytest.Dial(t, listen)
	for i := range 50 {
		if got := c.Do("SET", "k"+strconv.Itoa(i), "v"); got != "+OK\r\n" {
			t.Fatalf("SET with one Sentinel down at start: %q", got)
		}
	}
	for _, sh := range shards {
		if got := serverStat(t, px, sh.name, "primary"); got != sh.primary.Addr {
			t.Errorf("%s: primary %v, want %s", sh.name, got, sh.primary.Addr)
		}
	}
	waitPoolStat(t, px, "sentinels_up", 2, 10*time.Second)

	for _, s := range sents[1:] {
		s.Kill()
	}
	waitPoolStat(t, px, "sentinels_up", 0, 10*time.Second)
	for i := range 50 {
		if got := c.Do("GET", "k"+strconv.Itoa(i)); got != proxytest.Bulk("v") {
			t.Fatalf("GET with every Sentinel down: %q", got)
		}
	}
	time.Sleep(1500 * time.Millisecond)
	if got := c.Do("SET", "k", "v"); got != "+OK\r\n" {
		t.Fatalf("SET with every Sentinel down for a while: %q", got)
	}

	for _, s := range sents {
		s.Restart()
	}
	waitPoolStat(t, px, "sentinels_up", 3, 20*time.Second)
	shards[1].primary.Kill()
	promoted := testservers.WaitMaster(t, sents, "shard2", shards[1].primary.Addr, 30*time.Second)
	waitFailovers(t, px, "shard2", 1, 10*time.Second)
	if got := serverStat(t, px, "shard2", "primary"); got != promoted {
		t.Errorf("shard2: primary %v, want %s", got, promoted)
	}
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		r, err := c.TryDo(3*time.Second, "SET", "k"+strconv.Itoa(i), "after")
		if err == nil && r.Raw == "+OK\r\n" && placerNames([]string{"shard1", "shard2"})("k"+strconv.Itoa(i)) == 1 {
			break
		}
		if err != nil {
			c = proxytest.Dial(t, listen)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write to shard2 succeeds after its failover: %q %v", r.Raw, err)
		}
	}
}

// TestSentinelNoneAtStart: when no Sentinel answers at start, the server
// lines' addresses are used.
func TestSentinelNoneAtStart(t *testing.T) {
	b := proxytest.StartRedisBackends(t, 2)
	listen := proxytest.FreeListen(t)
	yaml := proxytest.Pool{Servers: []string{b[0].Addr + ":1 shard1", b[1].Addr + ":1 shard2"},
		Keys: []string{"sentinels: [" + proxytest.FreeListen(t) + ", " + proxytest.FreeListen(t) + "]"}}.YAML("alpha", listen)
	px := proxytest.StartProxyOpts(t, yaml, proxy.Options{StatsAddr: "127.0.0.1:0"})
	c := proxytest.Dial(t, listen)
	if got := c.Do("SET", "k", "v"); got != "+OK\r\n" {
		t.Fatalf("SET: %q", got)
	}
	if got := c.Do("GET", "k"); got != proxytest.Bulk("v") {
		t.Fatalf("GET: %q", got)
	}
	if got := serverStat(t, px, "shard1", "primary"); got != b[0].Addr {
		t.Errorf("shard1: primary %v, want the line's %s", got, b[0].Addr)
	}
}

// sentinelTimeline reads the Sentinels' logs and gives, for each step of a
// failover of master, the time from since when the first Sentinel logged it.
func sentinelTimeline(t *testing.T, sents []*testservers.Server, master string, since time.Time) string {
	steps := []string{"+sdown master", "+odown master", "+selected-slave", "+promoted-slave", "+switch-master"}
	first := make([]time.Time, len(steps))
	for _, s := range sents {
		data, err := os.ReadFile(s.SentinelLog())
		if err != nil {
			t.Logf("sentinel log: %v", err)
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			// 1234:X 30 Nov 2026 11:20:03.123 # +odown master shard1 ...
			_, rest, ok := strings.Cut(line, ":X ")
			if !ok || len(rest) < 24 || !strings.Contains(line, " "+master+" ") {
				continue
			}
			at, err := time.ParseInLocation("02 Jan 2006 15:04:05.000", rest[:24], time.Local)
			if err != nil || at.Before(since.Add(-time.Millisecond)) {
				continue
			}
			for i, step := range steps {
				if strings.Contains(rest, "# "+step+" ") && (first[i].IsZero() || at.Before(first[i])) {
					first[i] = at
				}
			}
		}
	}
	var out []string
	for i, step := range steps {
		if !first[i].IsZero() {
			out = append(out, fmt.Sprintf("%s %v", strings.Fields(step)[0], first[i].Sub(since).Round(time.Millisecond)))
		}
	}
	return strings.Join(out, ", ")
}

// whenTrue polls cond every 5 ms, for 30 s at most, and sends the time it
// first held (the zero time if never).
func whenTrue(cond func() bool) <-chan time.Time {
	ch := make(chan time.Time, 1)
	go func() {
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if cond() {
				ch <- time.Now()
				return
			}
		}
		ch <- time.Time{}
	}()
	return ch
}

// anySentinelReports says whether one of sents answers addr for master.
func anySentinelReports(sents []*testservers.Server, master, addr string) bool {
	for _, s := range sents {
		if a, err := testservers.MasterAddr(s.Addr, master); err == nil && a == addr {
			return true
		}
	}
	return false
}

// waitPoolStat waits up to d for pool alpha's counter key to be want.
func waitPoolStat(t *testing.T, px *proxy.Proxy, key string, want int64, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for proxytest.PoolStat(t, px, key) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s is %d after %v, want %d", key, proxytest.PoolStat(t, px, key), d, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReplicaReads: with replica_reads, reads go to the shard's replicas,
// spread by client (their commandstats count them, the primary's none),
// writes to the primary; with a replica dead, reads go to the other, and
// with both dead to the primary.
func TestReplicaReads(t *testing.T) {
	primary := testservers.Redis(t)
	replicas := []*testservers.Server{testservers.RedisReplica(t, primary), testservers.RedisReplica(t, primary)}
	sents := testservers.Sentinels(t, 1, map[string]string{"shard1": primary.Addr}, testservers.SentinelOptions{})
	listen := proxytest.FreeListen(t)
	shards := []failoverShard{{name: "shard1", primary: primary, replica: replicas[0]}}
	px := proxytest.StartProxyOpts(t, sentinelPoolYAML(listen, shards, sents, func(sh failoverShard) string { return sh.primary.Addr }, "replica_reads: true"),
		proxy.Options{StatsAddr: "127.0.0.1:0"})
	waitReplicas := func(want ...string) {
		t.Helper()
		slices.Sort(want)
		deadline := time.Now().Add(15 * time.Second)
		for {
			var got []string
			list, _ := serverStat(t, px, "shard1", "replicas").([]any)
			for _, a := range list {
				got = append(got, a.(string))
			}
			if slices.Equal(got, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("stats: replicas %v, want %v", got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitReplicas(replicas[0].Addr, replicas[1].Addr)
	var sets, gets [][]string
	for i := range 100 {
		sets = append(sets, []string{"SET", "k" + strconv.Itoa(i), strconv.Itoa(i)})
		gets = append(gets, []string{"GET", "k" + strconv.Itoa(i)})
	}
	for _, r := range proxytest.Pipeline(t, listen, sets) {
		if r != "+OK\r\n" {
			t.Fatalf("SET: %q", r)
		}
	}
	for _, r := range replicas {
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if got, _ := testservers.Do(r.Addr, "GET", "k99"); got == "99" {
				break
			}
		}
	}
	for range 4 { // four clients: both replicas serve some
		for i, r := range proxytest.Pipeline(t, listen, gets) {
			if r != proxytest.Bulk(strconv.Itoa(i)) {
				t.Fatalf("GET k%d: %q", i, r)
			}
		}
	}
	c := proxytest.Dial(t, listen)
	if got := c.Do("MGET", "k1", "k2"); got != "*2\r\n$1\r\n1\r\n$1\r\n2\r\n" {
		t.Errorf("MGET: %q", got)
	}
	n0, n1 := proxytest.CommandCalls(t, replicas[0], "get"), proxytest.CommandCalls(t, replicas[1], "get")
	if n0 == 0 || n1 == 0 || n0+n1 < 400 {
		t.Errorf("the replicas ran %d and %d GETs, want 400 between them, some on each", n0, n1)
	}
	if n := proxytest.CommandCalls(t, primary, "get") + proxytest.CommandCalls(t, primary, "mget"); n != 0 {
		t.Errorf("the primary ran %d reads, want 0", n)
	}
	if n := proxytest.CommandCalls(t, primary, "set"); n < 100 {
		t.Errorf("the primary ran %d SETs, want 100", n)
	}

	readsSucceed := func(what string) {
		t.Helper()
		ok := 0
		for deadline := time.Now().Add(10 * time.Second); ok < 20 && time.Now().Before(deadline); {
			r, err := c.TryDo(2*time.Second, "GET", "k7")
			if err != nil {
				c = proxytest.Dial(t, listen)
				continue
			}
			if r.Raw == proxytest.Bulk("7") {
				ok++
			} else {
				ok = 0
			}
		}
		if ok < 20 {
			t.Fatalf("reads do not succeed %s", what)
		}
	}
	replicas[0].Kill()
	readsSucceed("with one replica dead")
	replicas[1].Kill()
	readsSucceed("with both replicas dead")
	if n := proxytest.CommandCalls(t, primary, "get"); n == 0 {
		t.Error("the primary ran no GET after the replicas died")
	}
}

// TestSentinelByReload: a reload adds sentinels to a pool whose lines name
// dead addresses: the new servers start on the primaries the Sentinels
// report, and the pool follows a failover; a reload of the same file
// keeps servers and watcher; a reload without sentinels stops following.
func TestSentinelByReload(t *testing.T) {
	shards, sents := startSentinels(t)
	dead := map[string]string{"shard1": proxytest.FreeListen(t), "shard2": proxytest.FreeListen(t)}
	listen := proxytest.FreeListen(t)
	plain := proxytest.Pool{Servers: []string{dead["shard1"] + ":1 shard1", dead["shard2"] + ":1 shard2"}}.YAML("alpha", listen)
	px := proxytest.StartProxyOpts(t, plain, proxy.Options{StatsAddr: "127.0.0.1:0"})
	c := proxytest.Dial(t, listen)
	if got := c.Do("SET", "k", "v"); !strings.HasPrefix(got, "-ERR") {
		t.Fatalf("SET to dead addresses: %q", got)
	}
	withSentinels := sentinelPoolYAML(listen, shards, sents, func(sh failoverShard) string { return dead[sh.name] })
	applyYAML(t, px, withSentinels)
	if got := c.Do("SET", "k", "v"); got != "+OK\r\n" {
		t.Fatalf("SET after the reload that adds sentinels: %q", got)
	}
	waitPoolStat(t, px, "sentinels_up", 3, 10*time.Second)
	applyYAML(t, px, withSentinels)
	shards[0].primary.Kill()
	promoted := testservers.WaitMaster(t, sents, "shard1", shards[0].primary.Addr, 30*time.Second)
	waitFailovers(t, px, "shard1", 1, 10*time.Second)
	if got := serverStat(t, px, "shard1", "primary"); got != promoted {
		t.Errorf("shard1: primary %v, want %s", got, promoted)
	}
	applyYAML(t, px, plain)
	if got := serverStat(t, px, "shard1", "primary"); got != nil {
		t.Errorf("stats still show a primary without sentinels: %v", got)
	}
}

// TestSentinelAuth: shards that want a password (redis_auth) behind
// Sentinels that want one too (sentinel_auth): the proxy resolves, checks
// ROLE after AUTH, probes the promoted replica with AUTH, and follows a
// failover.
func TestSentinelAuth(t *testing.T) {
	const pw, spw = "shard-secret", "sentinel-secret"
	primary := testservers.Redis(t, "--requirepass", pw, "--masterauth", pw)
	replica := testservers.RedisReplica(t, primary, "--requirepass", pw, "--masterauth", pw)
	sents := testservers.Sentinels(t, 3, map[string]string{"shard1": primary.Addr},
		testservers.SentinelOptions{AuthPass: pw, Password: spw})
	listen := proxytest.FreeListen(t)
	shards := []failoverShard{{name: "shard1", primary: primary, replica: replica}}
	px := proxytest.StartProxyOpts(t, sentinelPoolYAML(listen, shards, sents, func(failoverShard) string { return proxytest.FreeListen(t) },
		"redis_auth: "+pw, "sentinel_auth: "+spw), proxy.Options{StatsAddr: "127.0.0.1:0"})
	c := proxytest.Dial(t, listen)
	if got := c.Do("AUTH", pw); got != "+OK\r\n" {
		t.Fatalf("AUTH: %q", got)
	}
	if got := c.Do("SET", "k", "v"); got != "+OK\r\n" {
		t.Fatalf("SET: %q", got)
	}
	waitPoolStat(t, px, "sentinels_up", 3, 10*time.Second)
	primary.Kill()
	promoted := testservers.WaitMaster(t, sents, "shard1", primary.Addr, 30*time.Second)
	waitFailovers(t, px, "shard1", 1, 10*time.Second)
	if got := serverStat(t, px, "shard1", "primary"); got != promoted {
		t.Errorf("primary %v, want %s", got, promoted)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := c.TryDo(3*time.Second, "SET", "k", "after")
		if err == nil && r.Raw == "+OK\r\n" {
			break
		}
		if err != nil {
			c = proxytest.Dial(t, listen)
			c.Do("AUTH", pw)
		}
		if time.Now().After(deadline) {
			t.Fatalf("SET after the failover: %q %v", r.Raw, err)
		}
	}
	if got := c.Do("GET", "k"); got != proxytest.Bulk("after") {
		t.Errorf("GET after the failover: %q, want %q", got, proxytest.Bulk("after"))
	}
	if got, _ := testservers.Do(promoted, "GET", "k"); !strings.Contains(got, "NOAUTH") {
		t.Errorf("the new primary answers GET without AUTH: %q (the test's servers must want a password)", got)
	}
}
