//go:build linux

package proxy_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/hashring"
	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// The tests of this file run a cluster pool through the operations a
// Redis Cluster lives by (reshard, rebalance, a node added, a primary
// killed, a manual failover, seeds down at start, a storm of MOVED) under
// a checking load (opsLoad), each on a cluster of its own.

// TestClusterOpsReshard reshards 2,000 slots from one primary to another
// with redis-cli, then rebalances, while 8 clients pipeline
// read-your-writes, INCRs and cross-slot MSET/MGET through the proxy: no
// client sees an error, and every counter ends at the number of its
// INCRs answered.
func TestClusterOpsReshard(t *testing.T) {
	c := testservers.NewCluster(t, testservers.ClusterOptions{})
	addr, px := proxytest.StartClusterProxy(t, c)
	fill(t, addr, 20000)
	ps := c.Primaries()
	from, to := ps[0], ps[1]
	l := startOpsLoad(t, addr, 8)

	start := time.Now()
	redisCLI(t, "--cluster", "reshard", from.Addr, "--cluster-from", from.ID, "--cluster-to", to.ID,
		"--cluster-slots", "2000", "--cluster-yes")
	reshard := time.Since(start)
	c.WaitHealthy(t, 20*time.Second)
	after := slotCounts(t, c)
	if after[to.ID] < 7000 {
		t.Fatalf("after the reshard %s has %d slots", to.Addr, after[to.ID])
	}
	start = time.Now()
	redisCLI(t, "--cluster", "rebalance", from.Addr, "--cluster-yes")
	rebalance := time.Since(start)
	c.WaitHealthy(t, 20*time.Second)
	balanced := slotCounts(t, c)
	if balanced[to.ID] > 5600 || balanced[from.ID] < 5300 {
		t.Fatalf("the rebalance moved nothing: %v", balanced)
	}
	time.Sleep(300 * time.Millisecond)
	l.checkClean(t)
	cs := clusterStats(px)
	t.Logf("reshard of 2000 slots %v, rebalance %v (slots after: %v); load: %s", reshard.Round(time.Millisecond),
		rebalance.Round(time.Millisecond), balanced, l.summary())
	t.Logf("redirects: %s", redirectSummary(cs))
	if cs.Moved == 0 || cs.Ask == 0 || cs.RetriesExhausted != 0 {
		t.Errorf("want MOVED and ASK followed, none given up: %s", redirectSummary(cs))
	}
}

// TestClusterOpsAddNode joins an empty primary with redis-cli --cluster
// add-node, then reshards 2,000 slots onto it under load: the proxy's map
// did not name the new node, so the first requests reach it by ASK and
// MOVED. No client sees an error; the counters are exact; keys written
// meanwhile live on the new node.
func TestClusterOpsAddNode(t *testing.T) {
	c := testservers.NewCluster(t, testservers.ClusterOptions{Replicas: -1})
	addr, px := proxytest.StartClusterProxy(t, c)
	fill(t, addr, 20000)
	added := c.AddNode(t)
	nodesBefore := clusterStats(px).Nodes
	l := startOpsLoad(t, addr, 8)

	start := time.Now()
	redisCLI(t, "--cluster", "reshard", added.Addr, "--cluster-from", "all", "--cluster-to", added.ID,
		"--cluster-slots", "2000", "--cluster-yes")
	reshard := time.Since(start)
	c.WaitHealthy(t, 20*time.Second)
	// redis-cli takes from each source its share, rounded.
	if n := slotCounts(t, c)[added.ID]; n < 1995 || n > 2000 {
		t.Fatalf("the new node has %d slots, want 2000 or a few less", n)
	}
	time.Sleep(300 * time.Millisecond)
	l.checkClean(t)
	cs := clusterStats(px)
	t.Logf("reshard of 2000 slots onto a new node %v; load: %s", reshard.Round(time.Millisecond), l.summary())
	t.Logf("redirects: %s (nodes known before: %d)", redirectSummary(cs), nodesBefore)
	if cs.Moved == 0 || cs.Ask == 0 || cs.RetriesExhausted != 0 || cs.Nodes != nodesBefore+1 {
		t.Errorf("want MOVED and ASK followed to the new node, known since: %s", redirectSummary(cs))
	}
	// Keys of the client written last are on the slot's owner now.
	on := 0
	for _, k := range l.keys[0].ryw {
		if c.Owner(hashringSlot(k)) != added {
			continue
		}
		on++
		direct := proxytest.Command(t, added.Addr, "GET", k)
		if via := proxytest.Command(t, addr, "GET", k); via != direct || !strings.HasPrefix(direct, "0:") {
			t.Errorf("%s: %q through the proxy, %q on the new node", k, via, direct)
		}
	}
	if on == 0 {
		t.Errorf("no key of client 0 moved to the new node")
	}
}

// TestClusterOpsKillPrimary kills a primary with SIGKILL under load (a
// replica per primary, node timeout 2 s): clients get errors only for
// requests already written to it, each saying it may have run; no
// -CLUSTERDOWN, MOVED or ASK reaches a client (cluster_retry_timeout
// covers the failover), and the clients that never touch its slots get
// no error at all, though the other primaries answer CLUSTERDOWN until
// the failover; afterwards every key of its slots is served by the
// replica that took them over.
func TestClusterOpsKillPrimary(t *testing.T) {
	c := testservers.NewCluster(t, testservers.ClusterOptions{NodeTimeout: 2 * time.Second})
	addr, px := proxytest.StartClusterProxy(t, c)
	victim := c.Primaries()[0]
	heir := c.ReplicasOf(victim)[0]
	victimSlots := c.Slots(victim)
	onVictim := func(key string) bool {
		s := hashringSlot(key)
		for _, r := range victimSlots {
			if s >= r[0] && s <= r[1] {
				return true
			}
		}
		return false
	}
	const clients, avoiding = 8, 4
	l := startOpsLoadAvoiding(t, addr, clients, avoiding, onVictim)

	time.Sleep(200 * time.Millisecond)
	killed := time.Now()
	c.Kill(victim)
	c.WaitHealthy(t, 30*time.Second)
	failover := time.Since(killed)
	if c.Role(heir) != "master" {
		t.Fatalf("%s did not take over from %s", heir.Addr, victim.Addr)
	}
	time.Sleep(500 * time.Millisecond)
	l.halt()
	l.checkWrong(t)
	l.mu.Lock()
	failed := 0
	for e, n := range l.errs {
		failed += n
		if !strings.Contains(e, "may have run") || !strings.Contains(e, victim.Addr) {
			t.Errorf("%d times %q: want only errors of requests written to %s, saying they may have run", n, e, victim.Addr)
		}
	}
	for keys := range l.errKey {
		if !slices.ContainsFunc(strings.Fields(keys), onVictim) {
			t.Errorf("a request on %s failed, none of them the dead primary's", keys)
		}
	}
	for g := clients - avoiding; g < clients; g++ {
		if n := l.clientErrs[g]; n > 0 {
			t.Errorf("client %d, off the dead primary's slots, had %d errors", g, n)
		}
	}
	l.mu.Unlock()
	lost := l.checkCounters(t, onVictim)

	// Every key of the dead primary's slots is served by its heir.
	var gets [][]string
	for _, k := range l.keys {
		for _, key := range k.ryw {
			if onVictim(key) {
				gets = append(gets, []string{"GET", key})
			}
		}
	}
	for i, rep := range proxytest.Texts(t, addr, gets) {
		direct := proxytest.Command(t, heir.Addr, gets[i]...)
		if rep != direct || rep == "(nil)" || strings.HasPrefix(rep, "-") {
			t.Errorf("%v: %q through the proxy, %q on %s", gets[i], rep, direct, heir.Addr)
		}
	}
	cs := clusterStats(px)
	t.Logf("failover %v after the kill; %d keys of its slots checked; %d requests failed, %d INCRs answered then lost with the primary; load: %s",
		failover.Round(time.Millisecond), len(gets), failed, lost, l.summary())
	t.Logf("redirects: %s", redirectSummary(cs))
	if cs.RetriesExhausted != 0 {
		t.Errorf("retries ran out: %s", redirectSummary(cs))
	}
}

// hashringSlot is a key's cluster slot.
func hashringSlot(key string) int { return int(hashring.ClusterSlot([]byte(key))) }

// TestClusterOpsManualFailover runs CLUSTER FAILOVER on a replica under
// load: its primary hands over without losing a write, and no client sees
// an error.
func TestClusterOpsManualFailover(t *testing.T) {
	c := testservers.NewCluster(t, testservers.ClusterOptions{})
	addr, px := proxytest.StartClusterProxy(t, c)
	old := c.Primaries()[0]
	heir := c.ReplicasOf(old)[0]
	l := startOpsLoad(t, addr, 8)

	start := time.Now()
	if got := proxytest.Command(t, heir.Addr, "CLUSTER", "FAILOVER"); got != "+OK" {
		t.Fatalf("CLUSTER FAILOVER on %s: %q", heir.Addr, got)
	}
	deadline := time.Now().Add(20 * time.Second)
	for c.Role(heir) != "master" || c.Role(old) != "slave" {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not take over from %s", heir.Addr, old.Addr)
		}
		time.Sleep(50 * time.Millisecond)
		c.WaitHealthy(t, 20*time.Second)
	}
	took := time.Since(start)
	time.Sleep(500 * time.Millisecond)
	l.checkClean(t)
	cs := clusterStats(px)
	t.Logf("manual failover %v; load: %s", took.Round(time.Millisecond), l.summary())
	t.Logf("redirects: %s", redirectSummary(cs))
	if cs.RetriesExhausted != 0 {
		t.Errorf("retries ran out: %s", redirectSummary(cs))
	}
}

// TestClusterOpsSeedsDown starts the proxy while its only seed is down: it
// listens, its pool is not ready and says why, a request gets a clear
// error; once the seed is back the pool takes a map and serves, without
// a restart.
func TestClusterOpsSeedsDown(t *testing.T) {
	c := testservers.NewCluster(t, testservers.ClusterOptions{Replicas: -1})
	seed := c.Nodes[0]
	c.Kill(seed)
	listen := proxytest.FreeListen(t)
	px := proxytest.StartProxy(t, proxytest.ClusterYAML("cluster", listen, []string{seed.Addr}))
	pc := proxytest.Dial(t, listen)
	ps := px.Snapshot().Pools[0]
	if ok, why := ps.Ready(); ok || why != "no slot map yet: the first refresh has not ended" && !strings.Contains(why, seed.Addr) {
		t.Fatalf("at start: ready %v (%q)", ok, why)
	}
	for deadline := time.Now().Add(5 * time.Second); ps.Cluster.RefreshFailures == 0; ps = px.Snapshot().Pools[0] {
		if time.Now().After(deadline) {
			t.Fatalf("no refresh ended in 5s: %+v", ps.Cluster)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if ok, why := ps.Ready(); ok || !strings.Contains(why, "no slot map") || !strings.Contains(why, seed.Addr) {
		t.Fatalf("ready %v (%q), want not ready: no slot map, naming the seed %s", ok, why, seed.Addr)
	}
	got := pc.Do("SET", "ops:seeds", "1")
	if want := "-CLUSTERDOWN Hash slot not served: the proxy has no slot map yet (no cluster node answered)\r\n"; got != want {
		t.Fatalf("SET without a slot map: %q, want %q", got, want)
	}
	t.Logf("before the seed answers: %q", got)
	// Refreshes are retried meanwhile, without a request to ask for them.
	failures := clusterStats(px).RefreshFailures
	time.Sleep(1200 * time.Millisecond)
	if n := clusterStats(px).RefreshFailures - failures; n < 2 {
		t.Errorf("%d refreshes tried in 1.2s while the seed was down, want one each 500ms", n)
	}

	restarted := time.Now()
	c.Restart(seed)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, why := px.Snapshot().Pools[0].Ready()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready 10s after the seed came back: %s", why)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ready := time.Since(restarted)
	c.WaitHealthy(t, 20*time.Second)
	healthy := time.Since(restarted)
	if ready > 3*time.Second {
		t.Errorf("ready %v after the seed came back, want a refresh within the retry gap (500ms)", ready)
	}
	if got := pc.Do("SET", "ops:seeds", "1"); got != "+OK\r\n" {
		t.Fatalf("SET once ready: %q", got)
	}
	if got := pc.Do("GET", "ops:seeds"); got != proxytest.Bulk("1") {
		t.Fatalf("GET once ready: %q", got)
	}
	t.Logf("seed back: pool ready after %v, cluster healthy after %v; %s", ready.Round(time.Millisecond),
		healthy.Round(time.Millisecond), redirectSummary(clusterStats(px)))
}

// TestClusterOpsRefreshStorm keeps many clients on slots that move (a
// reshard of 2,000 slots under 16 clients): every MOVED asks for a
// refresh, but the Topology makes at most one per 100 ms and spreads them
// over the nodes, so no node is asked CLUSTER SLOTS more than a few
// times a second.
func TestClusterOpsRefreshStorm(t *testing.T) {
	c := testservers.NewCluster(t, testservers.ClusterOptions{Replicas: -1})
	addr, px := proxytest.StartClusterProxy(t, c)
	fill(t, addr, 20000)
	for _, n := range c.Nodes {
		if got := proxytest.Command(t, n.Addr, "CONFIG", "RESETSTAT"); got != "+OK" {
			t.Fatalf("CONFIG RESETSTAT: %q", got)
		}
	}
	before, since := clusterStats(px), time.Now()
	l := startOpsLoad(t, addr, 16)
	ps := c.Primaries()
	start := time.Now()
	redisCLI(t, "--cluster", "reshard", ps[0].Addr, "--cluster-from", ps[0].ID, "--cluster-to", ps[1].ID,
		"--cluster-slots", "2000", "--cluster-yes")
	took := time.Since(start)
	l.checkClean(t)
	cs, elapsed := clusterStats(px), time.Since(since)
	refreshes := cs.Refreshes - before.Refreshes
	// At most one refresh per 100 ms (cluster.DefaultMinGap), whatever
	// the MOVED: a few more for the time the load took to stop.
	if most := int64(elapsed/(100*time.Millisecond)) + 2; refreshes > most {
		t.Errorf("%d refreshes in %v, want at most %d", refreshes, elapsed, most)
	}
	var calls []string
	total := 0
	for _, n := range c.Nodes {
		got := slotsCalls(t, n.Addr)
		total += got
		rate := float64(got) / elapsed.Seconds()
		calls = append(calls, fmt.Sprintf("%s: %d (%.1f/s)", n.Addr, got, rate))
		if rate >= 15 {
			t.Errorf("%s answered CLUSTER SLOTS %d times in %v", n.Addr, got, elapsed)
		}
	}
	// Spread over the nodes: none answers much more than its share.
	for _, n := range c.Nodes {
		if got := slotsCalls(t, n.Addr); got > total/len(c.Nodes)+3 {
			t.Errorf("%s answered %d of %d CLUSTER SLOTS, more than its share", n.Addr, got, total)
		}
	}
	t.Logf("reshard %v under 16 clients, %v in all: %d MOVED, %d ASK, %d refreshes (%.1f/s); CLUSTER SLOTS per node: %s; load: %s",
		took.Round(time.Millisecond), elapsed.Round(time.Millisecond), cs.Moved-before.Moved, cs.Ask-before.Ask, refreshes,
		float64(refreshes)/elapsed.Seconds(), strings.Join(calls, ", "), l.summary())
	if cs.Moved-before.Moved < 100 {
		t.Errorf("only %d MOVED: no storm", cs.Moved-before.Moved)
	}
}

// slotsCalls is how many CLUSTER SLOTS the node at addr answered since
// its stats were reset.
func slotsCalls(t *testing.T, addr string) int {
	t.Helper()
	info, err := testservers.Do(addr, "INFO", "commandstats")
	if err != nil {
		t.Fatalf("INFO commandstats of %s: %v", addr, err)
	}
	_, rest, ok := strings.Cut(info, "cmdstat_cluster|slots:calls=")
	if !ok {
		return 0
	}
	n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
	return n
}

// TestClusterOpsMayHaveRunOnce kills a primary while a request runs on it
// (a script that takes a second), in a batch whose other request waits for
// a node that is down: the batch's redirects go round after round until
// cluster_retry_timeout, and the dead primary's request gets its error
// once, saying once that it may have run; the other gets the error of a
// request never sent.
func TestClusterOpsMayHaveRunOnce(t *testing.T) {
	c := testservers.NewCluster(t, testservers.ClusterOptions{Replicas: -1})
	addr, px := proxytest.StartClusterProxy(t, c, "cluster_retry_timeout: 1000")
	ps := c.Primaries()
	busy, down := ps[0], ps[2]
	keyOn := func(n *testservers.ClusterNode) string {
		for i := 0; ; i++ {
			if k := fmt.Sprintf("ops:once:%d", i); c.Owner(hashringSlot(k)) == n {
				return k
			}
		}
	}
	c.Kill(down)
	script := "local t = redis.call('TIME') while true do local n = redis.call('TIME') " +
		"if (n[1] - t[1]) * 1000000 + n[2] - t[2] > 1500000 then return 1 end end"
	type result struct {
		replies []string
		err     error
	}
	done := make(chan result, 1)
	go func() {
		r, err := proxytest.PipelineErr(addr, [][]string{{"EVAL", script, "1", keyOn(busy)}, {"GET", keyOn(down)}})
		done <- result{r, err}
	}()
	time.Sleep(300 * time.Millisecond) // the script runs, the GET is retried
	c.Kill(busy)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	eval, get := r.replies[0], r.replies[1]
	if !strings.HasPrefix(eval, "-ERR server unavailable: "+busy.Addr) || strings.Count(eval, "may have run") != 1 {
		t.Errorf("the script on the primary that died: %q, want one error saying once that it may have run", eval)
	}
	if !strings.HasPrefix(get, "-ERR server unavailable: "+down.Addr) || strings.Contains(get, "may have run") {
		t.Errorf("the GET on a node down: %q, want the error of a request never sent", get)
	}
	cs := clusterStats(px)
	t.Logf("%q, %q; %s", eval, get, redirectSummary(cs))
	if cs.RetriesExhausted != 1 {
		t.Errorf("%d requests ran out of retries, want 1", cs.RetriesExhausted)
	}
}

// TestClusterOpsPausedPrimary: a primary that hangs (SIGSTOP: it keeps its
// sockets and answers nothing) rather than dies. The cluster fails over
// from it after its node timeout; a request the proxy had written to it
// gets, after the cluster pool's default timeout (5 s, since the file
// gives none), an error that says it may have run, instead of waiting
// for the process to wake; the key is then served by the new primary.
func TestClusterOpsPausedPrimary(t *testing.T) {
	c := testservers.NewCluster(t, testservers.ClusterOptions{NodeTimeout: 2 * time.Second})
	addr, px := proxytest.StartClusterProxy(t, c)
	if got := px.Snapshot().Pools[0]; got.Cluster == nil {
		t.Fatal("not a cluster pool")
	}
	victim := c.Primaries()[0]
	heir := c.ReplicasOf(victim)[0]
	var key string
	for i := 0; key == ""; i++ {
		k := fmt.Sprintf("paused:%d", i)
		if c.Owner(hashringSlot(k)) == victim {
			key = k
		}
	}
	cl := proxytest.Dial(t, addr)
	if got := cl.Do("SET", key, "v"); got != "+OK\r\n" {
		t.Fatalf("SET: %q", got)
	}
	if got := proxytest.Command(t, victim.Addr, "WAIT", "1", "2000"); got != ":1" {
		t.Fatalf("WAIT on the primary: %q", got)
	}
	c.Stop(victim)
	defer c.Continue(victim)
	start := time.Now()
	rep, err := cl.TryDo(15*time.Second, "GET", key)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("GET to the paused primary: %v after %v (no answer)", err, took)
	}
	if !strings.HasPrefix(rep.Raw, "-ERR timeout") || !strings.Contains(rep.Raw, "may have run") ||
		took < 4*time.Second || took > 8*time.Second {
		t.Fatalf("GET to the paused primary: %q after %v; want the timeout error after about 5 s", rep.Raw, took)
	}
	c.WaitHealthy(t, 30*time.Second)
	if c.Role(heir) != "master" {
		t.Fatalf("%s did not take over from %s", heir.Addr, victim.Addr)
	}
	for attempt := 0; ; attempt++ {
		rep, err := proxytest.Dial(t, addr).TryDo(10*time.Second, "GET", key)
		if err == nil && rep.Raw == proxytest.Bulk("v") {
			break
		}
		if attempt == 2 {
			t.Fatalf("GET after the failover: %q %v", rep.Raw, err)
		}
		time.Sleep(time.Second)
	}
}
