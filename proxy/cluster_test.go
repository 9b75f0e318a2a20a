//go:build linux

package proxy_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/hashring"
	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// TestClusterRoutes writes 2,000 keys through a cluster pool, pipelined,
// and finds each on its slot's primary; MGET, MSET, DEL and EXISTS over
// keys of many slots are split per slot and merged; a command whose keys
// span slots gets Redis Cluster's own -CROSSSLOT, byte for byte as a node
// answers it.
func TestClusterRoutes(t *testing.T) {
	c := testservers.SharedCluster(t)
	addr, _ := proxytest.StartClusterProxy(t, c)
	const n = 2000
	var sets, gets [][]string
	for i := range n {
		k := fmt.Sprintf("routes:%d", i)
		sets = append(sets, []string{"SET", k, "v" + k})
		gets = append(gets, []string{"GET", k})
	}
	for i, rep := range proxytest.Texts(t, addr, sets) {
		if rep != "+OK" {
			t.Fatalf("%v: %q", sets[i], rep)
		}
	}
	for i, rep := range proxytest.Texts(t, addr, gets) {
		if want := "vroutes:" + fmt.Sprint(i); rep != want {
			t.Fatalf("%v: %q, want %q", gets[i], rep, want)
		}
	}
	for i := 0; i < n; i += 97 {
		k := fmt.Sprintf("routes:%d", i)
		owner := c.Owner(hashring.ClusterSlot([]byte(k)))
		if got := proxytest.Command(t, owner.Addr, "GET", k); got != "v"+k {
			t.Fatalf("%s on its owner %s: %q", k, owner.Addr, got)
		}
	}

	pc := proxytest.Dial(t, addr)
	args := []string{"MSET"}
	keys := []string{"MGET"}
	for i := range 20 {
		k := fmt.Sprintf("multi:%d", i)
		args = append(args, k, fmt.Sprint(i))
		keys = append(keys, k)
	}
	if got := pc.Do(args...); got != "+OK\r\n" {
		t.Fatalf("MSET over 20 slots: %q", got)
	}
	var want strings.Builder
	fmt.Fprintf(&want, "*21\r\n")
	for i := range 20 {
		want.WriteString(proxytest.Bulk(fmt.Sprint(i)))
	}
	want.WriteString("$-1\r\n")
	if got := pc.Do(append(keys, "multi:none")...); got != want.String() {
		t.Fatalf("MGET over 21 slots: %q, want %q", got, want.String())
	}
	if got := pc.Do("EXISTS", "multi:1", "multi:2", "multi:none", "multi:1"); got != ":3\r\n" {
		t.Fatalf("EXISTS: %q", got)
	}
	if got := pc.Do(append([]string{"DEL"}, keys[1:11]...)...); got != ":10\r\n" {
		t.Fatalf("DEL of 10: %q", got)
	}

	// Keys of two slots, on one node or two: the node's own answer.
	a, b := "cross:a", "cross:b"
	owner := c.Owner(hashring.ClusterSlot([]byte(a)))
	for _, cmd := range [][]string{
		{"RENAME", a, b},
		{"SUNIONSTORE", a, b},
		{"EVAL", "return 1", "2", a, b},
		{"MSETNX", a, "1", b, "2"},
	} {
		direct := proxytest.Dial(t, owner.Addr).Do(cmd...)
		if !strings.HasPrefix(direct, "-CROSSSLOT") {
			t.Fatalf("%v on a node: %q", cmd, direct)
		}
		if got := pc.Do(cmd...); got != direct {
			t.Errorf("%v: %q, a node answers %q", cmd, got, direct)
		}
	}
	// Keys of one slot, by hash tag: served whole.
	pc.Do("DEL", "{t}a", "{t}b", "{t}c")
	if got := pc.Do("MSETNX", "{t}a", "1", "{t}b", "2"); got != ":1\r\n" {
		t.Fatalf("MSETNX in one slot: %q", got)
	}
	if got := pc.Do("RENAME", "{t}a", "{t}c"); got != "+OK\r\n" {
		t.Fatalf("RENAME in one slot: %q", got)
	}
}

// TestClusterRedirects moves a slot between primaries by hand, as
// redis-cli --cluster reshard does, while a client reads and writes its
// keys through the proxy: during the migration the source answers ASK
// for keys already moved (and for new ones), after it every node answers
// MOVED; the client sees its values and OKs, never a redirect. An MGET
// of two keys of the slot, one moved and one not, is answered TRYAGAIN
// by both nodes until the migration ends: the proxy retries it for
// cluster_retry_timeout, then gives the client Redis's error.
func TestClusterRedirects(t *testing.T) {
	c := testservers.NewCluster(t, testservers.ClusterOptions{Replicas: -1})
	addr, px := proxytest.StartClusterProxy(t, c, "cluster_retry_timeout: 300")
	key := func(i int) string { return fmt.Sprintf("{move}:%d", i) }
	slot := hashring.ClusterSlot([]byte(key(0)))
	src := c.Owner(slot)
	var dst *testservers.ClusterNode
	for _, p := range c.Primaries() {
		if p != src {
			dst = p
			break
		}
	}
	const n = 200
	var sets [][]string
	for i := range n {
		sets = append(sets, []string{"SET", key(i), fmt.Sprint(i)})
	}
	for _, rep := range proxytest.Texts(t, addr, sets) {
		if rep != "+OK" {
			t.Fatalf("SET: %q", rep)
		}
	}
	mustOK := func(node *testservers.ClusterNode, args ...string) {
		t.Helper()
		if got := proxytest.Command(t, node.Addr, args...); got != "+OK" {
			t.Fatalf("%s %v: %q", node.Addr, args, got)
		}
	}
	check := func(stage string, extra int) {
		t.Helper()
		var cmds [][]string
		for i := range n {
			cmds = append(cmds, []string{"GET", key(i)}, []string{"INCR", key(i)}, []string{"DECR", key(i)})
		}
		cmds = append(cmds, []string{"SET", key(n + extra), "new"}, []string{"GET", key(n + extra)},
			[]string{"MGET", key(0), key(1)})
		got := proxytest.Pipeline(t, addr, cmds)
		for i := range n {
			v := fmt.Sprint(i)
			if got[3*i] != proxytest.Bulk(v) || got[3*i+1] != fmt.Sprintf(":%d\r\n", i+1) || got[3*i+2] != fmt.Sprintf(":%d\r\n", i) {
				t.Fatalf("%s: key %d: %q %q %q", stage, i, got[3*i], got[3*i+1], got[3*i+2])
			}
		}
		if tail := got[3*n:]; tail[0] != "+OK\r\n" || tail[1] != proxytest.Bulk("new") {
			t.Fatalf("%s: a new key: %q", stage, tail)
		}
		mget := got[3*n+2]
		if extra == 1 && !strings.HasPrefix(mget, "-TRYAGAIN ") || extra != 1 && mget != "*2\r\n$1\r\n0\r\n$1\r\n1\r\n" {
			t.Fatalf("%s: MGET of two keys of the slot: %q", stage, mget)
		}
		for _, rep := range got {
			if strings.HasPrefix(rep, "-MOVED") || strings.HasPrefix(rep, "-ASK") {
				t.Fatalf("%s: a redirect reached the client: %q", stage, rep)
			}
		}
	}
	check("before", 0)

	mustOK(dst, "CLUSTER", "SETSLOT", fmt.Sprint(slot), "IMPORTING", src.ID)
	mustOK(src, "CLUSTER", "SETSLOT", fmt.Sprint(slot), "MIGRATING", dst.ID)
	dh, dp, _ := strings.Cut(dst.Addr, ":")
	for i := 0; i < n; i += 2 {
		mustOK(src, "MIGRATE", dh, dp, key(i), "0", "5000")
	}
	check("migrating", 1) // half the keys answered ASK, and the new key
	if cs := px.Snapshot().Pools[0].Cluster; cs.Ask < n/2 || cs.Moved != 0 || cs.TryAgain == 0 || cs.RetriesExhausted != 1 {
		t.Fatalf("migrating: %+v, want %d ASK, no MOVED, the MGET's TRYAGAIN retried then given up", cs, n/2)
	}
	for i := 1; i < n; i += 2 {
		mustOK(src, "MIGRATE", dh, dp, key(i), "0", "5000")
	}
	mustOK(src, "MIGRATE", dh, dp, key(n), "0", "5000")
	for _, node := range c.Primaries() {
		mustOK(node, "CLUSTER", "SETSLOT", fmt.Sprint(slot), "NODE", dst.ID)
	}
	check("moved", 2)
	cs := px.Snapshot().Pools[0].Cluster
	if cs.Moved == 0 || cs.RetriesExhausted != 1 || cs.SlotsCovered != 16384 {
		t.Fatalf("moved: %+v", cs)
	}
	if ok, why := px.Snapshot().Pools[0].Ready(); !ok {
		t.Fatalf("not ready: %s", why)
	}
	if got := proxytest.Command(t, dst.Addr, "GET", key(n+2)); got != "new" {
		t.Fatalf("the new key on the slot's new owner: %q", got)
	}
}

// TestClusterReload: a reload that changes a cluster pool's seeds and a
// client limit keeps the pool, its clients and its slot map (a client
// connected before goes on without a reconnect); one that turns it into
// a plain pool of the same address replaces it.
func TestClusterReload(t *testing.T) {
	c := testservers.SharedCluster(t)
	addr, px := proxytest.StartClusterProxy(t, c)
	cl := proxytest.Dial(t, addr)
	if got := cl.Do("SET", "reload:a", "1"); got != "+OK\r\n" {
		t.Fatalf("SET: %q", got)
	}
	before := px.Snapshot().Pools[0].Cluster
	seeds := []string{c.Nodes[1].Addr, c.Nodes[2].Addr}
	if err := px.ReloadBytes([]byte(proxytest.ClusterYAML("cluster", addr, seeds, "client_output_limit: 1000000"))); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if got := cl.Do("GET", "reload:a"); got != "$1\r\n1\r\n" {
		t.Fatalf("GET after the reload, same connection: %q", got)
	}
	after := px.Snapshot().Pools[0]
	if after.Cluster == nil || after.Cluster.SlotsCovered != 16384 || after.Cluster.Nodes < before.Nodes {
		t.Fatalf("after the reload: %+v", after.Cluster)
	}
	if ok, why := after.Ready(); !ok {
		t.Fatalf("not ready after the reload: %s", why)
	}
	// The same address as a plain pool of one node: a new pool.
	plain := proxytest.Pool{Servers: []string{c.Nodes[0].Addr + ":1"}}.YAML("cluster", addr)
	if err := px.ReloadBytes([]byte(plain)); err != nil {
		t.Fatalf("reload to a plain pool: %v", err)
	}
	if ps := px.Snapshot().Pools[0]; ps.Cluster != nil {
		t.Fatalf("still a cluster pool: %+v", ps.Cluster)
	}
}
