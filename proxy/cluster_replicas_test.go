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
	"github.com/shardproxy/shardproxy/proxy"
)

// replicaReadKeys is how many keys the cluster replica tests write and
// read back.
const replicaReadKeys = 600

// startReplicaReads starts a cluster pool with replica_reads in front of
// c and waits until each primary's replicas are listed as where its reads
// go.
func startReplicaReads(t *testing.T, c *testservers.Cluster, timeout string) (string, *proxy.Proxy) {
	t.Helper()
	addr, px := proxytest.StartClusterProxy(t, c, "replica_reads: true", "timeout: "+timeout)
	waitClusterReplicas(t, c, px, 10*time.Second)
	return addr, px
}

// waitClusterReplicas waits until the pool lists, for each primary of c,
// every replica c knows of as where its reads go.
func waitClusterReplicas(t *testing.T, c *testservers.Cluster, px *proxy.Proxy, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		got, want := listedReplicas(px), map[string][]string{}
		for _, p := range c.Primaries() {
			for _, r := range c.ReplicasOf(p) {
				want[p.Addr] = append(want[p.Addr], r.Addr)
			}
			slices.Sort(want[p.Addr])
		}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas listed after %v: %v, want %v", d, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// listedReplicas are the replicas each primary's reads go to, by the
// pool's snapshot.
func listedReplicas(px *proxy.Proxy) map[string][]string {
	out := map[string][]string{}
	for _, s := range px.Snapshot().Pools[0].Servers {
		rs := slices.Clone(s.Replicas)
		slices.Sort(rs)
		out[s.Addr] = rs
	}
	return out
}

// writeAndWait sets key prefix:i to "v<i>" for i below n through the pool
// at addr, then has every primary of c WAIT for its replicas.
func writeAndWait(t *testing.T, c *testservers.Cluster, addr, prefix string, n int) {
	t.Helper()
	var sets [][]string
	for i := range n {
		sets = append(sets, []string{"SET", fmt.Sprintf("%s:%d", prefix, i), fmt.Sprintf("v%d", i)})
	}
	for i, rep := range proxytest.Texts(t, addr, sets) {
		if rep != "+OK" {
			t.Fatalf("%v: %q", sets[i], rep)
		}
	}
	for _, p := range c.Primaries() {
		want := strconv.Itoa(len(c.ReplicasOf(p)))
		if got, err := testservers.Do(p.Addr, "WAIT", want, "5000"); err != nil || got != ":"+want {
			t.Fatalf("WAIT %s on %s: %q %v", want, p.Addr, got, err)
		}
	}
}

// readBack GETs prefix:i for i below n through the pool at addr, pipelined
// and over clients clients, and fails on any reply but "v<i>".
func readBack(t *testing.T, addr, prefix string, n, clients int) {
	t.Helper()
	for cl := range clients {
		var gets [][]string
		var idx []int
		for i := cl; i < n; i += clients {
			gets = append(gets, []string{"GET", fmt.Sprintf("%s:%d", prefix, i)})
			idx = append(idx, i)
		}
		for j, rep := range proxytest.Texts(t, addr, gets) {
			if want := fmt.Sprintf("v%d", idx[j]); rep != want {
				t.Fatalf("client %d: %v: %q, want %q", cl, gets[j], rep, want)
			}
		}
	}
}

// getCalls are the GETs each node of c ran, from INFO commandstats.
func getCalls(t *testing.T, c *testservers.Cluster, nodes []*testservers.ClusterNode) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, n := range nodes {
		out[n.Addr] = proxytest.CommandCalls(t, n.Server, "get")
	}
	return out
}

// keysByPrimary counts the keys prefix:i, i below n, each primary of c
// owns.
func keysByPrimary(c *testservers.Cluster, prefix string, n int) map[string]int {
	out := map[string]int{}
	for i := range n {
		out[c.Owner(hashring.ClusterSlot(fmt.Appendf(nil, "%s:%d", prefix, i))).Addr]++
	}
	return out
}

// TestClusterReplicaReads reads 600 keys through a cluster pool with
// replica_reads, after WAIT on each primary: every GET runs on a replica
// of its slot's primary (INFO commandstats: each replica ran exactly as
// many GETs as its primary owns keys, the primaries none) and answers the
// value written. MGET over many slots is split per slot to the replicas
// too. Writes go to primaries only: no MOVED is followed.
func TestClusterReplicaReads(t *testing.T) {
	c := testservers.SharedCluster(t)
	addr, px := startReplicaReads(t, c, "2000")
	const prefix = "rr"
	writeAndWait(t, c, addr, prefix, replicaReadKeys)

	primaries := c.Primaries()
	var replicas []*testservers.ClusterNode
	for _, p := range primaries {
		replicas = append(replicas, c.ReplicasOf(p)...)
	}
	beforeP, beforeR := getCalls(t, c, primaries), getCalls(t, c, replicas)
	readBack(t, addr, prefix, replicaReadKeys, 4)
	afterP, afterR := getCalls(t, c, primaries), getCalls(t, c, replicas)

	owned := keysByPrimary(c, prefix, replicaReadKeys)
	total := 0
	for _, p := range primaries {
		if d := afterP[p.Addr] - beforeP[p.Addr]; d != 0 {
			t.Errorf("primary %s ran %d GETs, want 0", p.Addr, d)
		}
		got := 0
		for _, r := range c.ReplicasOf(p) {
			got += afterR[r.Addr] - beforeR[r.Addr]
		}
		if got != owned[p.Addr] {
			t.Errorf("replicas of %s ran %d GETs, want %d (its keys)", p.Addr, got, owned[p.Addr])
		}
		total += got
	}
	t.Logf("%d GETs, %d on replicas, by primary %v", replicaReadKeys, total, owned)

	// MGET over 30 slots: one fragment per slot, each to a replica.
	mget := []string{"MGET"}
	var want strings.Builder
	fmt.Fprintf(&want, "*30\r\n")
	for i := range 30 {
		mget = append(mget, fmt.Sprintf("%s:%d", prefix, i))
		want.WriteString(proxytest.Bulk(fmt.Sprintf("v%d", i)))
	}
	beforeM := map[string]int{}
	for _, r := range replicas {
		beforeM[r.Addr] = proxytest.CommandCalls(t, r.Server, "mget")
	}
	if got := proxytest.Dial(t, addr).Do(mget...); got != want.String() {
		t.Fatalf("MGET over 30 slots: %q, want %q", got, want.String())
	}
	frags := 0
	for _, r := range replicas {
		frags += proxytest.CommandCalls(t, r.Server, "mget") - beforeM[r.Addr]
	}
	if frags != 30 {
		t.Errorf("replicas ran %d MGETs for 30 keys in 30 slots, want 30", frags)
	}

	// Writes after reads, on the same connection: primaries only.
	pc := proxytest.Dial(t, addr)
	for i := range 50 {
		k := fmt.Sprintf("%s:w%d", prefix, i)
		pc.Do("DEL", k) // the shared cluster outlives the test
		if got := pc.Do("INCR", k); got != ":1\r\n" {
			t.Fatalf("INCR %s: %q", k, got)
		}
	}
	cs := px.Snapshot().Pools[0].Cluster
	if cs.Moved != 0 || cs.Ask != 0 || cs.ReplicaFallbacks != 0 {
		t.Fatalf("moved %d, ask %d, replica fallbacks %d: want none", cs.Moved, cs.Ask, cs.ReplicaFallbacks)
	}
}

// TestClusterReplicaReadsFallBack reads through a cluster pool with
// replica_reads while one replica is paused (SIGSTOP), then killed, and
// while another replicates a different primary (so it answers MOVED for
// its old primary's slots): every read is answered with its value, none
// with an error, the reads the replica did not serve being sent to the
// primary; the pool's map then lists the moved replica under its new
// primary.
func TestClusterReplicaReadsFallBack(t *testing.T) {
	c := testservers.NewCluster(t, testservers.ClusterOptions{})
	addr, px := startReplicaReads(t, c, "300")
	errors0 := px.Snapshot().Pools[0].ForwardError // the start's, before the first map
	const prefix = "fb"
	writeAndWait(t, c, addr, prefix, replicaReadKeys)
	primaries := c.Primaries()
	a, b := primaries[0], primaries[1]
	ra, rb := c.ReplicasOf(a)[0], c.ReplicasOf(b)[0]
	owned := keysByPrimary(c, prefix, replicaReadKeys)

	// Paused: its reads time out (300 ms), and go to the primary.
	c.Stop(ra)
	before := getCalls(t, c, []*testservers.ClusterNode{a})[a.Addr]
	start := time.Now()
	readBack(t, addr, prefix, replicaReadKeys, 4)
	fellBack := getCalls(t, c, []*testservers.ClusterNode{a})[a.Addr] - before
	t.Logf("paused replica: %d reads in %v, %d of them served by its primary (%d keys there)",
		replicaReadKeys, time.Since(start).Round(time.Millisecond), fellBack, owned[a.Addr])
	if fellBack != owned[a.Addr] {
		t.Errorf("primary %s served %d GETs while its replica was paused, want %d", a.Addr, fellBack, owned[a.Addr])
	}
	if n := px.Snapshot().Pools[0].Cluster.ReplicaFallbacks; n < 1 {
		t.Errorf("replica fallbacks %d, want at least 1", n)
	}
	c.Continue(ra)

	// Killed: reads go to the primary until the replica is back.
	c.Kill(ra)
	readBack(t, addr, prefix, replicaReadKeys, 4)
	c.Restart(ra)

	// rb replicates a now: it answers MOVED for b's slots until the
	// pool's map shows the change.
	if got, err := testservers.Do(rb.Addr, "CLUSTER", "REPLICATE", a.ID); err != nil || got != "+OK" {
		t.Fatalf("CLUSTER REPLICATE on %s: %q %v", rb.Addr, got, err)
	}
	readBack(t, addr, prefix, replicaReadKeys, 4)
	moved := errorCount(t, rb.Addr, "MOVED")
	t.Logf("replica that moved to another primary: %d MOVED answered, none passed on", moved)
	if moved < 1 {
		t.Errorf("%s answered %d MOVED, want at least 1 (the test did not test the fallback)", rb.Addr, moved)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		l := listedReplicas(px)
		if slices.Contains(l[a.Addr], rb.Addr) && !slices.Contains(l[b.Addr], rb.Addr) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas listed 15 s after CLUSTER REPLICATE: %v", l)
		}
		time.Sleep(50 * time.Millisecond)
	}
	readBack(t, addr, prefix, replicaReadKeys, 4)
	ps := px.Snapshot().Pools[0]
	if ps.ForwardError != errors0 {
		t.Errorf("forward errors %d, want %d as at the start", ps.ForwardError, errors0)
	}
	if ps.Cluster.Moved != 0 {
		t.Errorf("MOVED followed %d, want 0: replicas' MOVED go to the primary, not the node named", ps.Cluster.Moved)
	}
}

// errorCount is how many error replies starting with prefix the node at
// addr gave, from INFO errorstats.
func errorCount(t *testing.T, addr, prefix string) int {
	t.Helper()
	info, err := testservers.Do(addr, "INFO", "errorstats")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(info, "errorstat_"+prefix+":count=")
	if !ok {
		return 0
	}
	end := strings.IndexAny(rest, "\r\n")
	n, _ := strconv.Atoi(rest[:end])
	return n
}

// TestClusterReplicaReadsSpread reads every key through 8 clients, one
// after the other, from a cluster with 2 replicas per primary: each
// client's reads of a shard go to one replica, chosen by client, so each
// replica serves the reads of exactly 4 clients (INFO commandstats: 4
// times the keys its primary owns), and the primaries none.
func TestClusterReplicaReadsSpread(t *testing.T) {
	c := testservers.NewCluster(t, testservers.ClusterOptions{Replicas: 2})
	addr, _ := startReplicaReads(t, c, "2000")
	const prefix, n, clients = "spread", 300, 8
	writeAndWait(t, c, addr, prefix, n)
	before := getCalls(t, c, c.Nodes)
	for range clients {
		readBack(t, addr, prefix, n, 1)
	}
	after := getCalls(t, c, c.Nodes)
	owned := keysByPrimary(c, prefix, n)
	for _, p := range c.Primaries() {
		if d := after[p.Addr] - before[p.Addr]; d != 0 {
			t.Errorf("primary %s ran %d GETs, want 0", p.Addr, d)
		}
		var got []int
		for _, r := range c.ReplicasOf(p) {
			got = append(got, after[r.Addr]-before[r.Addr])
		}
		want := []int{clients / 2 * owned[p.Addr], clients / 2 * owned[p.Addr]}
		if !slices.Equal(got, want) {
			t.Errorf("replicas of %s (%d keys) ran %v GETs, want %v", p.Addr, owned[p.Addr], got, want)
		}
		t.Logf("primary %s: %d keys; its replicas ran %v GETs for %d clients", p.Addr, owned[p.Addr], got, clients)
	}
}
