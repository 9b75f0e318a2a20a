//go:build linux

package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/shardproxy/shardproxy/hashring"
	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// Transactions, blocking commands, pub/sub, the keyspace commands and
// applications through a cluster pool (redis_cluster: true).

// slotKeys finds keys of the form prefix:N: one per condition, in the
// order asked; each condition sees the slot's owner and the slot.
func slotKeys(t *testing.T, c *testservers.Cluster, prefix string, conds ...func(owner *testservers.ClusterNode, slot int) bool) []string {
	t.Helper()
	out := make([]string, len(conds))
	found := 0
	for i := 0; found < len(conds) && i < 100000; i++ {
		k := fmt.Sprintf("%s:%d", prefix, i)
		slot := hashring.ClusterSlot([]byte(k))
		for j, cond := range conds {
			if out[j] == "" && cond(c.Owner(slot), slot) {
				out[j] = k
				found++
				break
			}
		}
	}
	if found < len(conds) {
		t.Fatalf("keys of prefix %s: found %d of %d", prefix, found, len(conds))
	}
	return out
}

// scanAll walks SCAN through addr from cursor 0 and returns every key it
// gave, in order, and the number of calls.
func scanAll(t *testing.T, addr string, args ...string) ([]string, int) {
	t.Helper()
	pc := proxytest.Dial(t, addr)
	var keys []string
	cursor, calls := "0", 0
	for {
		rep, err := proxytest.ReadReply(sendRaw(t, pc, append([]string{"SCAN", cursor}, args...)))
		if err != nil {
			t.Fatalf("SCAN %s: %v", cursor, err)
		}
		calls++
		if len(rep.Elems) != 2 {
			t.Fatalf("SCAN %s: %s", cursor, rep)
		}
		for _, e := range rep.Elems[1].Elems {
			keys = append(keys, e.Str)
		}
		if cursor = rep.Elems[0].Str; cursor == "0" {
			return keys, calls
		}
	}
}

// sendRaw sends one command on c and returns its reader.
func sendRaw(t *testing.T, c *proxytest.Conn, args []string) *bufio.Reader {
	t.Helper()
	c.Write(proxytest.EncodeCommand(nil, args...))
	return c.R
}

// dbsizeSum is the sum of DBSIZE over nodes.
func dbsizeSum(t *testing.T, nodes []*testservers.ClusterNode) int {
	t.Helper()
	sum := 0
	for _, n := range nodes {
		sum += proxytest.Dbsize(t, n.Addr)
	}
	return sum
}

// TestClusterKeyspace writes 3,000 keys through a cluster pool and walks
// them with SCAN (the cursor goes over the primaries one after another):
// every key is seen exactly once, with COUNT and MATCH; KEYS gives the
// same set; DBSIZE is the sum over the primaries (not the replicas, which
// hold a copy of every key).
func TestClusterKeyspace(t *testing.T) {
	c := testservers.SharedCluster(t)
	addr, _ := proxytest.StartClusterProxy(t, c)
	const n = 3000
	var sets [][]string
	want := map[string]bool{}
	for i := range n {
		k := fmt.Sprintf("keyspace:%d", i)
		want[k] = true
		sets = append(sets, []string{"SET", k, "v"})
	}
	for i, rep := range proxytest.Texts(t, addr, sets) {
		if rep != "+OK" {
			t.Fatalf("%v: %q", sets[i], rep)
		}
	}
	for _, count := range []string{"10", "1000"} {
		keys, calls := scanAll(t, addr, "MATCH", "keyspace:*", "COUNT", count)
		seen := map[string]int{}
		for _, k := range keys {
			seen[k]++
		}
		for k := range want {
			if seen[k] != 1 {
				t.Fatalf("SCAN COUNT %s: %s seen %d times", count, k, seen[k])
			}
		}
		if len(keys) != n {
			t.Fatalf("SCAN COUNT %s: %d keys, want %d", count, len(keys), n)
		}
		t.Logf("SCAN COUNT %s: %d keys in %d calls", count, len(keys), calls)
	}
	rep, err := proxytest.ReadReply(sendRaw(t, proxytest.Dial(t, addr), []string{"KEYS", "keyspace:*"}))
	if err != nil || len(rep.Elems) != n {
		t.Fatalf("KEYS: %d keys (%v), want %d", len(rep.Elems), err, n)
	}
	for _, e := range rep.Elems {
		if !want[e.Str] {
			t.Fatalf("KEYS: %q", e.Str)
		}
	}
	primaries := dbsizeSum(t, c.Primaries())
	all := dbsizeSum(t, c.Nodes)
	got := proxytest.Command(t, addr, "DBSIZE")
	if got != ":"+strconv.Itoa(primaries) || primaries < n {
		t.Fatalf("DBSIZE: %s, the primaries hold %d keys (every node: %d)", got, primaries, all)
	}
	t.Logf("DBSIZE %s (every node, replicas too: %d)", got, all)
	if got := proxytest.Command(t, addr, "FLUSHALL"); !strings.HasPrefix(got, "-ERR 'flushall' would empty") {
		t.Fatalf("FLUSHALL without allow_flush: %q", got)
	}
}

// TestClusterFlush empties a cluster of its own through a pool with
// allow_flush: FLUSHALL and FLUSHDB run on every primary (the replicas
// follow), DBSIZE is then 0 and RANDOMKEY null; with one key left, it is
// the key RANDOMKEY gives, whichever primary is asked first.
func TestClusterFlush(t *testing.T) {
	c := testservers.NewCluster(t, testservers.ClusterOptions{Replicas: -1})
	addr, _ := proxytest.StartClusterProxy(t, c, "allow_flush: true")
	fill := func() {
		var sets [][]string
		for i := range 300 {
			sets = append(sets, []string{"SET", fmt.Sprintf("flush:%d", i), "v"})
		}
		proxytest.Texts(t, addr, sets)
		if got := proxytest.Command(t, addr, "DBSIZE"); got != ":300" {
			t.Fatalf("DBSIZE after 300 SETs: %s", got)
		}
	}
	for _, cmd := range []string{"FLUSHALL", "FLUSHDB"} {
		fill()
		if got := proxytest.Command(t, addr, cmd); got != "+OK" {
			t.Fatalf("%s: %q", cmd, got)
		}
		if got := dbsizeSum(t, c.Nodes); got != 0 {
			t.Fatalf("after %s the nodes hold %d keys", cmd, got)
		}
		if got := proxytest.Command(t, addr, "DBSIZE"); got != ":0" {
			t.Fatalf("DBSIZE after %s: %s", cmd, got)
		}
	}
	pc := proxytest.Dial(t, addr)
	if got := pc.Do("RANDOMKEY"); got != "$-1\r\n" {
		t.Fatalf("RANDOMKEY of an empty cluster: %q", got)
	}
	pc.Do("SET", "flush:only", "v")
	for range 10 {
		if got := pc.Do("RANDOMKEY"); got != proxytest.Bulk("flush:only") {
			t.Fatalf("RANDOMKEY with one key: %q", got)
		}
	}
}

// doAll sends each command on c in turn and returns the replies.
func doAll(c *proxytest.Conn, cmds [][]string) []string {
	out := make([]string, len(cmds))
	for i, cmd := range cmds {
		out[i] = c.Do(cmd...)
	}
	return out
}

// TestClusterTransactions runs transactions and WATCH through a cluster
// pool. Within one slot they run on the slot's owner, keyless commands
// queued before the first key included, and WATCH guards them. Over two
// slots the client gets what a node answers, byte for byte: the node
// itself when both slots are its own (-CROSSSLOT at EXEC, -CROSSSLOT to a
// command or a WATCH whose keys span slots), and the same bytes from the
// proxy when the second slot lives on another node, with nothing run.
func TestClusterTransactions(t *testing.T) {
	c := testservers.SharedCluster(t)
	addr, _ := proxytest.StartClusterProxy(t, c)
	pc := proxytest.Dial(t, addr)

	want := "*6\r\n+PONG\r\n+OK\r\n:2\r\n$-1\r\n+PONG\r\n:1\r\n"
	got := strings.Join(doAll(pc, [][]string{{"MULTI"}, {"PING"}, {"SET", "{tx}a", "1"}, {"INCR", "{tx}a"}, {"GET", "{tx}b"},
		{"PING"}, {"EXISTS", "{tx}a"}, {"EXEC"}}), "")
	if got != "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n"+want {
		t.Fatalf("a transaction in one slot: %q", got)
	}
	owner := c.Owner(hashring.ClusterSlot([]byte("{tx}a")))
	if v := proxytest.Command(t, owner.Addr, "GET", "{tx}a"); v != "2" {
		t.Fatalf("{tx}a on its owner: %q", v)
	}

	// WATCH: a change by another client makes EXEC answer a null.
	other := proxytest.Dial(t, addr)
	if got := strings.Join(doAll(pc, [][]string{{"WATCH", "{tx}a"}, {"GET", "{tx}a"}}), ""); got != "+OK\r\n$1\r\n2\r\n" {
		t.Fatalf("WATCH, GET: %q", got)
	}
	other.Do("SET", "{tx}a", "changed")
	if got := strings.Join(doAll(pc, [][]string{{"MULTI"}, {"SET", "{tx}a", "mine"}, {"EXEC"}}), ""); got != "+OK\r\n+QUEUED\r\n*-1\r\n" {
		t.Fatalf("a watched key changed: %q", got)
	}
	if got := strings.Join(doAll(pc, [][]string{{"WATCH", "{tx}a"}, {"MULTI"}, {"SET", "{tx}a", "mine"}, {"EXEC"}}), ""); got != "+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n" {
		t.Fatalf("a watched key unchanged: %q", got)
	}

	// a and b: two slots of one node; o: a slot of another node.
	keys := slotKeys(t, c, "txslots",
		func(n *testservers.ClusterNode, _ int) bool { return n == owner },
		func(n *testservers.ClusterNode, s int) bool {
			return n == owner && s != hashring.ClusterSlot([]byte("txslots:0"))
		},
		func(n *testservers.ClusterNode, _ int) bool { return n != owner })
	a, b, o := keys[0], keys[1], keys[2]
	if hashring.ClusterSlot([]byte(a)) == hashring.ClusterSlot([]byte(b)) {
		t.Fatalf("%s and %s: one slot", a, b)
	}
	node := proxytest.Dial(t, owner.Addr)
	for _, seq := range []struct {
		name string
		cmds func(second string) [][]string
	}{
		{"transaction over two slots", func(k string) [][]string {
			return [][]string{{"MULTI"}, {"SET", a, "1"}, {"SET", k, "1"}, {"EXEC"}}
		}},
		{"transaction starting on the second slot", func(k string) [][]string {
			return [][]string{{"MULTI"}, {"INCR", k}, {"PING"}, {"SET", a, "1"}, {"EXEC"}}
		}},
		{"a command over two slots in a transaction", func(k string) [][]string {
			return [][]string{{"MULTI"}, {"SET", a, "1"}, {"MSET", a, "1", k, "2"}, {"EXEC"}}
		}},
		{"a transaction discarded", func(k string) [][]string {
			return [][]string{{"MULTI"}, {"SET", a, "1"}, {"SET", k, "1"}, {"DISCARD"}, {"EXEC"}}
		}},
		{"WATCH over two slots", func(k string) [][]string {
			return [][]string{{"WATCH", a, k}, {"MULTI"}, {"EXEC"}}
		}},
		{"a blocking command over two slots", func(k string) [][]string {
			return [][]string{{"BLPOP", a, k, "1"}, {"BLMOVE", a, k, "LEFT", "LEFT", "1"}}
		}},
		{"a script over two slots", func(k string) [][]string {
			return [][]string{{"MULTI"}, {"EVAL", "return 1", "2", a, k}, {"EXEC"}}
		}},
	} {
		direct := doAll(node, seq.cmds(b))
		if v := proxytest.Texts(t, owner.Addr, [][]string{{"EXISTS", a}, {"EXISTS", b}}); v[0] != ":0" || v[1] != ":0" {
			t.Fatalf("%s: the node ran it: EXISTS %v", seq.name, v)
		}
		for _, second := range []string{b, o} {
			got := doAll(pc, seq.cmds(second))
			if !slices.Equal(got, direct) {
				t.Errorf("%s, %s and %s: %q; a node answers %q", seq.name, a, second, got, direct)
			}
			if v := pc.Do("EXISTS", a, second); v != ":0\r\n" {
				t.Fatalf("%s: it ran: EXISTS %s", seq.name, v)
			}
		}
		t.Logf("%s: %q", seq.name, direct)
	}
	// Watching two slots of one node is the node's business: it serves
	// them. Two nodes cannot: the second WATCH is refused.
	if got := strings.Join(doAll(pc, [][]string{{"WATCH", a}, {"WATCH", b}, {"MULTI"}, {"SET", b, "1"}, {"EXEC"}, {"DEL", b}}), ""); got != "+OK\r\n+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n:1\r\n" {
		t.Fatalf("WATCH of two slots of a node: %q", got)
	}
	if got := strings.Join(doAll(pc, [][]string{{"WATCH", a}, {"WATCH", o}, {"UNWATCH"}}), ""); got != "+OK\r\n-"+crossSlotText+"\r\n+OK\r\n" {
		t.Fatalf("WATCH of two nodes' slots: %q", got)
	}
}

const crossSlotText = "CROSSSLOT Keys in request don't hash to the same slot"

// blockThen sends a blocking command on c, waits until node has it
// blocked, runs then, and returns the blocking command's reply.
func blockThen(t *testing.T, c *proxytest.Conn, node *testservers.ClusterNode, cmd []string, then func()) string {
	t.Helper()
	c.Write(proxytest.EncodeCommand(nil, cmd...))
	waitBlocked(t, node.Addr)
	then()
	return c.Read()
}

// TestClusterBlocking runs the blocking commands through a cluster pool,
// each on the owner of its keys' slot, blocked there until another
// client gives it what it waits for: BLPOP, BLMOVE and BRPOPLPUSH within
// one slot, BZPOPMIN, XREAD BLOCK; and a timeout's null.
func TestClusterBlocking(t *testing.T) {
	c := testservers.SharedCluster(t)
	addr, _ := proxytest.StartClusterProxy(t, c)
	pc, other := proxytest.Dial(t, addr), proxytest.Dial(t, addr)
	owner := c.Owner(hashring.ClusterSlot([]byte("{blk}")))
	for _, tc := range []struct {
		cmd, push []string
		want      string
	}{
		{[]string{"BLPOP", "{blk}l1", "{blk}l2", "5"}, []string{"RPUSH", "{blk}l2", "x"}, proxytest.Array(proxytest.Bulk("{blk}l2"), proxytest.Bulk("x"))},
		{[]string{"BLMOVE", "{blk}src", "{blk}dst", "LEFT", "RIGHT", "5"}, []string{"RPUSH", "{blk}src", "y"}, proxytest.Bulk("y")},
		{[]string{"BRPOPLPUSH", "{blk}dst", "{blk}l3", "5"}, nil, proxytest.Bulk("y")},
		{[]string{"BZPOPMIN", "{blk}z", "5"}, []string{"ZADD", "{blk}z", "3", "m"}, proxytest.Array(proxytest.Bulk("{blk}z"), proxytest.Bulk("m"), proxytest.Bulk("3"))},
		{[]string{"BLPOP", "{blk}none", "0.1"}, nil, "*-1\r\n"},
	} {
		var got string
		if tc.push == nil {
			got = pc.Do(tc.cmd...)
		} else {
			got = blockThen(t, pc, owner, tc.cmd, func() {
				if rep := other.Do(tc.push...); strings.HasPrefix(rep, "-") {
					t.Fatalf("%v: %q", tc.push, rep)
				}
			})
		}
		if got != tc.want {
			t.Fatalf("%v: %q, want %q", tc.cmd, got, tc.want)
		}
	}
	var id string
	got := blockThen(t, pc, owner, []string{"XREAD", "BLOCK", "5000", "STREAMS", "{blk}s", "$"}, func() {
		id = proxytest.Text(other.Do("XADD", "{blk}s", "*", "f", "v"))
	})
	want := proxytest.Array(proxytest.Array(proxytest.Bulk("{blk}s"), proxytest.Array(proxytest.Array(proxytest.Bulk(id),
		proxytest.Array(proxytest.Bulk("f"), proxytest.Bulk("v"))))))
	if got != want {
		t.Fatalf("XREAD BLOCK: %q, want %q", got, want)
	}
	if v := proxytest.Command(t, owner.Addr, "LPOP", "{blk}l3"); v != "y" {
		t.Fatalf("BRPOPLPUSH's list on the slot's owner: %q", v)
	}
	other.Do("DEL", "{blk}l3", "{blk}s", "{blk}z")
}

// moveEmptySlot gives an empty slot to dst on every primary, the new
// owner first, as redis-cli --cluster reshard ends a slot's move: the
// proxy's map is stale until its next refresh, or a MOVED.
func moveEmptySlot(t *testing.T, c *testservers.Cluster, slot int, dst *testservers.ClusterNode) {
	t.Helper()
	nodes := append([]*testservers.ClusterNode{dst}, slices.DeleteFunc(c.Primaries(), func(n *testservers.ClusterNode) bool { return n == dst })...)
	for _, n := range nodes {
		if got := proxytest.Command(t, n.Addr, "CLUSTER", "SETSLOT", strconv.Itoa(slot), "NODE", dst.ID); got != "+OK" {
			t.Fatalf("%s: SETSLOT %d NODE: %q", n.Addr, slot, got)
		}
	}
}

// TestClusterSessionsMoved moves slots between primaries of a cluster of
// its own behind the pool's back. A blocking command sent to the old
// owner meets MOVED and blocks on the new one, and meets ASK while the
// slot migrates and blocks on the importing node, behind ASKING; a
// transaction or a WATCH that meets MOVED with its first key moves to the
// new owner and runs there. A transaction whose slot moves after it
// started, or whose slot is migrating, cannot follow: the command is
// answered -TRYAGAIN and EXEC -EXECABORT, nothing run; run again, it
// runs. No MOVED or ASK reaches the client.
func TestClusterSessionsMoved(t *testing.T) {
	c := testservers.NewCluster(t, testservers.ClusterOptions{Replicas: -1})
	addr, px := proxytest.StartClusterProxy(t, c)
	pc, other := proxytest.Dial(t, addr), proxytest.Dial(t, addr)
	slotOf := func(k string) int { return hashring.ClusterSlot([]byte(k)) }
	away := func(tag string) (src, dst *testservers.ClusterNode) {
		src = c.Owner(slotOf(tag))
		for _, p := range c.Primaries() {
			if p != src {
				return src, p
			}
		}
		t.Fatal("one primary")
		return nil, nil
	}
	moved := func() int64 { return px.Snapshot().Pools[0].Cluster.Moved }

	// A blocking command.
	_, dst := away("{mv1}")
	moveEmptySlot(t, c, slotOf("{mv1}"), dst)
	before := moved()
	got := blockThen(t, pc, dst, []string{"BLPOP", "{mv1}l", "5"}, func() {
		proxytest.Command(t, dst.Addr, "RPUSH", "{mv1}l", "x")
	})
	if want := proxytest.Array(proxytest.Bulk("{mv1}l"), proxytest.Bulk("x")); got != want || moved() == before {
		t.Fatalf("BLPOP of a moved slot: %q (MOVED followed: %d), want %q", got, moved()-before, want)
	}

	// A transaction, and a WATCH, whose first key meets MOVED.
	_, dst = away("{mv2}")
	moveEmptySlot(t, c, slotOf("{mv2}"), dst)
	before = moved()
	got = strings.Join(doAll(pc, [][]string{{"MULTI"}, {"PING"}, {"SET", "{mv2}k", "1"}, {"INCR", "{mv2}k"}, {"EXEC"}}), "")
	if got != "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n+PONG\r\n+OK\r\n:2\r\n" || moved() == before {
		t.Fatalf("a transaction of a moved slot: %q (MOVED followed: %d)", got, moved()-before)
	}
	if v := proxytest.Command(t, dst.Addr, "GET", "{mv2}k"); v != "2" {
		t.Fatalf("{mv2}k on the slot's new owner: %q", v)
	}
	_, dst = away("{mv3}")
	moveEmptySlot(t, c, slotOf("{mv3}"), dst)
	got = strings.Join(doAll(pc, [][]string{{"WATCH", "{mv3}k"}, {"MULTI"}, {"SET", "{mv3}k", "1"}, {"EXEC"}}), "")
	if got != "+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n" {
		t.Fatalf("a watch of a moved slot: %q", got)
	}

	// The slot moves after the session chose its node.
	_, dst = away("{mv4}")
	if got := pc.Do("WATCH", "{mv4}k"); got != "+OK\r\n" {
		t.Fatalf("WATCH: %q", got)
	}
	moveEmptySlot(t, c, slotOf("{mv4}"), dst)
	got = strings.Join(doAll(pc, [][]string{{"MULTI"}, {"SET", "{mv4}k", "1"}, {"EXEC"}}), "")
	if got != "+OK\r\n-"+sessionMovedText+"\r\n-EXECABORT Transaction discarded because of previous errors.\r\n" {
		t.Fatalf("a transaction whose slot moved under its watch: %q", got)
	}
	got = strings.Join(doAll(pc, [][]string{{"WATCH", "{mv4}k"}, {"MULTI"}, {"SET", "{mv4}k", "1"}, {"EXEC"}}), "")
	if got != "+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n" {
		t.Fatalf("the transaction run again: %q", got)
	}

	// A migrating slot: ASK.
	src, dst := away("{mv5}")
	slot := strconv.Itoa(slotOf("{mv5}"))
	for _, step := range []struct {
		n    *testservers.ClusterNode
		args []string
	}{{dst, []string{"IMPORTING", src.ID}}, {src, []string{"MIGRATING", dst.ID}}} {
		if got := proxytest.Command(t, step.n.Addr, append([]string{"CLUSTER", "SETSLOT", slot}, step.args...)...); got != "+OK" {
			t.Fatalf("SETSLOT %v: %q", step.args, got)
		}
	}
	asks := px.Snapshot().Pools[0].Cluster.Ask
	got = blockThen(t, pc, dst, []string{"BLPOP", "{mv5}l", "5"}, func() {
		if rep := proxytest.Texts(t, dst.Addr, [][]string{{"ASKING"}, {"RPUSH", "{mv5}l", "z"}}); rep[1] != ":1" {
			t.Fatalf("RPUSH on the importing node: %q", rep)
		}
	})
	if want := proxytest.Array(proxytest.Bulk("{mv5}l"), proxytest.Bulk("z")); got != want || px.Snapshot().Pools[0].Cluster.Ask == asks {
		t.Fatalf("BLPOP of a migrating slot: %q, want %q", got, want)
	}
	got = strings.Join(doAll(pc, [][]string{{"MULTI"}, {"SET", "{mv5}k", "1"}, {"EXEC"}}), "")
	if got != "+OK\r\n-"+sessionMigratingText+"\r\n-EXECABORT Transaction discarded because of previous errors.\r\n" {
		t.Fatalf("a transaction in a migrating slot: %q", got)
	}
	if v := other.Do("EXISTS", "{mv5}k"); v != ":0\r\n" {
		t.Fatalf("EXISTS {mv5}k: %q", v)
	}
}

const (
	sessionMovedText     = "TRYAGAIN the slot of the keys moved to another node during the transaction or watch: run it again"
	sessionMigratingText = "TRYAGAIN the slot of the keys is migrating to another node: run the transaction or watch again"
)

// readMessages reads from c until it has n pushes or d passes without
// one, and returns them as "kind channel payload" lines (a pmessage's
// pattern before its channel).
func readMessages(t *testing.T, c *proxytest.Conn, n int, d time.Duration) []string {
	t.Helper()
	var out []string
	for {
		c.Net.SetReadDeadline(time.Now().Add(d))
		rep, err := proxytest.ReadReply(c.R)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				c.Net.SetDeadline(time.Now().Add(30 * time.Second))
				return out
			}
			t.Fatalf("reading messages: %v (%d read)", err, len(out))
		}
		var parts []string
		for _, e := range rep.Elems {
			parts = append(parts, e.Str)
		}
		out = append(out, strings.Join(parts, " "))
		if len(out) == n {
			// Any more (a message twice) comes soon after.
			d = 200 * time.Millisecond
		}
	}
}

// TestClusterPubSub subscribes through a cluster pool to channels of
// every node, to patterns and to shard channels, and publishes through
// the proxy and straight to each node: a cluster sends every PUBLISH to
// every node, so the proxy subscribes a channel or a pattern on one node
// only, and each message arrives exactly once; SPUBLISH reaches the
// shard channel's subscribers on its slot's owner. PUBSUB's counts are
// those of the clients subscribed.
func TestClusterPubSub(t *testing.T) {
	c := testservers.SharedCluster(t)
	addr, _ := proxytest.StartClusterProxy(t, c)
	pub := proxytest.Dial(t, addr)
	numpat := pub.Do("PUBSUB", "NUMPAT")

	channels := slotKeys(t, c, "ps:c",
		func(n *testservers.ClusterNode, _ int) bool { return n == c.Primaries()[0] },
		func(n *testservers.ClusterNode, _ int) bool { return n == c.Primaries()[1] },
		func(n *testservers.ClusterNode, _ int) bool { return n == c.Primaries()[2] })
	patterns := []string{"ps:p:*", "ps:q:?"}
	sub := proxytest.Dial(t, addr)
	got := sub.Do(append([]string{"SUBSCRIBE"}, channels...)...)
	got += proxytest.Text(sub.Read())
	got += proxytest.Text(sub.Read())
	sub.Write(proxytest.EncodeCommand(nil, append([]string{"PSUBSCRIBE"}, patterns...)...))
	rep := readMessages(t, sub, 2, 5*time.Second)
	if len(rep) != 2 || rep[1] != "psubscribe ps:q:? " {
		t.Fatalf("PSUBSCRIBE: %q", rep)
	}
	ssub := proxytest.Dial(t, addr)
	if got := ssub.Do("SSUBSCRIBE", "{sh}a", "{sh}b"); got != proxytest.Array(proxytest.Bulk("ssubscribe"), proxytest.Bulk("{sh}a"), ":1\r\n") {
		t.Fatalf("SSUBSCRIBE: %q", got)
	}
	readMessages(t, ssub, 1, 5*time.Second)
	if got := ssub.Do("SSUBSCRIBE", "{sh}a", "sh:other"); got != "-"+crossSlotText+"\r\n" {
		t.Fatalf("SSUBSCRIBE over two slots: %q", got)
	}

	// Counts.
	for _, q := range []struct{ cmd []string }{
		{[]string{"PUBSUB", "NUMSUB", channels[0], channels[1], channels[2], "ps:none"}},
		{[]string{"PUBSUB", "SHARDNUMSUB", "{sh}a", "{sh}b", "{sh}c"}},
	} {
		r, err := proxytest.ReadReply(sendRaw(t, pub, q.cmd))
		if err != nil || len(r.Elems) != 2*(len(q.cmd)-2) {
			t.Fatalf("%v: %s %v", q.cmd, r, err)
		}
		for i := 0; i < len(r.Elems); i += 2 {
			want := int64(1)
			if strings.HasSuffix(q.cmd[2+i/2], "none") || strings.HasSuffix(q.cmd[2+i/2], "c}") || q.cmd[2+i/2] == "{sh}c" {
				want = 0
			}
			if r.Elems[i+1].Num != want {
				t.Errorf("%v: %s", q.cmd, r)
			}
		}
	}
	if n0, _ := strconv.Atoi(strings.Trim(numpat, ":\r\n")); pub.Do("PUBSUB", "NUMPAT") != fmt.Sprintf(":%d\r\n", n0+2) {
		t.Errorf("PUBSUB NUMPAT: %q, before the test's 2 patterns %q", pub.Do("PUBSUB", "NUMPAT"), numpat)
	}
	perNode := 0
	for _, p := range c.Primaries() {
		n, _ := strconv.Atoi(proxytest.Text(proxytest.Dial(t, p.Addr).Do("PUBSUB", "NUMPAT"))[1:])
		perNode += n
	}
	if n0, _ := strconv.Atoi(strings.Trim(numpat, ":\r\n")); perNode != n0+2 {
		t.Errorf("the primaries hold %d patterns; want the test's 2 once each", perNode-n0)
	}
	r, _ := proxytest.ReadReply(sendRaw(t, pub, []string{"PUBSUB", "CHANNELS", "ps:*"}))
	var names []string
	for _, e := range r.Elems {
		names = append(names, e.Str)
	}
	slices.Sort(names)
	if want := slices.Sorted(slices.Values(channels)); !slices.Equal(names, want) {
		t.Errorf("PUBSUB CHANNELS ps:*: %q, want %q", names, want)
	}
	if got := pub.Do("PUBSUB", "SHARDCHANNELS", "{sh}*"); got != proxytest.Array(proxytest.Bulk("{sh}a"), proxytest.Bulk("{sh}b")) &&
		got != proxytest.Array(proxytest.Bulk("{sh}b"), proxytest.Bulk("{sh}a")) {
		t.Errorf("PUBSUB SHARDCHANNELS: %q", got)
	}

	// Messages: through the proxy, and straight to each node.
	var want []string
	publish := func(conn *proxytest.Conn, cmd, ch, msg string) {
		t.Helper()
		if got := conn.Do(cmd, ch, msg); got != ":1\r\n" && got != ":0\r\n" {
			t.Fatalf("%s %s: %q", cmd, ch, got)
		}
	}
	nodes := []*proxytest.Conn{pub}
	for _, p := range c.Primaries() {
		nodes = append(nodes, proxytest.Dial(t, p.Addr))
	}
	for i, conn := range nodes {
		for _, ch := range channels {
			msg := fmt.Sprintf("m%d", i)
			publish(conn, "PUBLISH", ch, msg)
			want = append(want, "message "+ch+" "+msg)
		}
		for j, ch := range []string{"ps:p:1", "ps:p:22", "ps:q:3"} {
			msg := fmt.Sprintf("p%d.%d", i, j)
			publish(conn, "PUBLISH", ch, msg)
			want = append(want, fmt.Sprintf("pmessage %s %s %s", patterns[j/2], ch, msg))
		}
	}
	got2 := readMessages(t, sub, len(want), 5*time.Second)
	slices.Sort(got2)
	slices.Sort(want)
	if !slices.Equal(got2, want) {
		t.Fatalf("messages: %d, want %d once each:\n got %q\nwant %q", len(got2), len(want), got2, want)
	}
	if got := pub.Do("SPUBLISH", "{sh}b", "s1"); got != ":1\r\n" {
		t.Fatalf("SPUBLISH: %q", got)
	}
	if got := readMessages(t, ssub, 1, 5*time.Second); !slices.Equal(got, []string{"smessage {sh}b s1"}) {
		t.Fatalf("shard messages: %q", got)
	}
	t.Logf("%d messages, each once; PUBSUB NUMPAT %q", len(want), pub.Do("PUBSUB", "NUMPAT"))
}

// TestClusterAppBullMQ runs BullMQ (testdata/bullmq, as TestAppBullMQ
// does) through a cluster pool, with the queue prefix "{bullc}" that
// BullMQ asks for in a cluster: its Lua scripts, its MULTI flows, its
// BZPOPMIN on the queue's marker and its QueueEvents' XREAD BLOCK all run
// on the slot's owner, and every job is processed exactly once.
func TestClusterAppBullMQ(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed (test.sh installs it)")
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "bullmq"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "bullmq", "package.json")); err != nil {
		t.Fatalf("BullMQ is not installed: run ./test.sh, or npm ci --prefix %s (%v)", dir, err)
	}
	c := testservers.SharedCluster(t)
	addr, px := proxytest.StartClusterProxy(t, c)
	const prefix = "{bullc}"
	clear := func() {
		keys, _ := scanAll(t, addr, "MATCH", prefix+"*", "COUNT", "1000")
		if len(keys) > 0 {
			proxytest.Command(t, addr, append([]string{"DEL"}, keys...)...)
		}
	}
	clear()
	checkBullMQ(t, runBullMQ(t, node, dir, addr, prefix))
	owner := c.Owner(hashring.ClusterSlot([]byte(prefix)))
	keys, _ := scanAll(t, addr, "MATCH", prefix+"*", "COUNT", "1000")
	onOwner, _ := proxytest.ReadReply(sendRaw(t, proxytest.Dial(t, owner.Addr), []string{"KEYS", prefix + "*"}))
	if len(keys) == 0 || len(onOwner.Elems) != len(keys) {
		t.Errorf("BullMQ's keys: %d through the proxy, %d on the slot's owner", len(keys), len(onOwner.Elems))
	}
	cs := px.Snapshot().Pools[0].Cluster
	t.Logf("%d keys of the queue, all on %s; redirects: %d MOVED, %d ASK", len(keys), owner.Addr, cs.Moved, cs.Ask)
	clear()
}

// TestClusterAppGoRedisTx runs go-redis's plain Client (not its
// ClusterClient) through a cluster pool: TxPipelined within a hash tag
// (MULTI, the commands and EXEC in one pipeline) and Watch with its
// optimistic retry, under 8 goroutines incrementing one counter: the
// count is exact. A TxPipelined over two slots fails with Redis's
// -CROSSSLOT and changes nothing.
func TestClusterAppGoRedisTx(t *testing.T) {
	c := testservers.SharedCluster(t)
	addr, _ := proxytest.StartClusterProxy(t, c)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 8})
	t.Cleanup(func() { rdb.Close() })
	rdb.Del(ctx, "{gotx}n", "{gotx}log", "{gotx}w")

	const workers, rounds = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
					p.Incr(ctx, "{gotx}n")
					p.RPush(ctx, "{gotx}log", fmt.Sprintf("%d.%d", w, i))
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
				// Watch: read, then write in a transaction, again
				// when another client wrote between.
				for {
					err := rdb.Watch(ctx, func(tx *redis.Tx) error {
						v, err := tx.Get(ctx, "{gotx}w").Int()
						if err != nil && err != redis.Nil {
							return err
						}
						_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
							p.Set(ctx, "{gotx}w", v+1, 0)
							return nil
						})
						return err
					}, "{gotx}w")
					if err == redis.TxFailedErr {
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					break
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n, _ := rdb.Get(ctx, "{gotx}n").Int()
	w, _ := rdb.Get(ctx, "{gotx}w").Int()
	l, _ := rdb.LLen(ctx, "{gotx}log").Result()
	if n != workers*rounds || w != workers*rounds || l != workers*rounds {
		t.Fatalf("after %d transactions: INCR %d, WATCHed counter %d, list %d", workers*rounds, n, w, l)
	}
	owner := c.Owner(hashring.ClusterSlot([]byte("{gotx}")))
	if v := proxytest.Command(t, owner.Addr, "GET", "{gotx}n"); v != strconv.Itoa(workers*rounds) {
		t.Fatalf("the counter on the slot's owner: %q", v)
	}
	_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, "{gotx}n")
		p.Incr(ctx, "gotx:elsewhere")
		return nil
	})
	if err == nil || err.Error() != crossSlotText {
		t.Fatalf("TxPipelined over two slots: %v", err)
	}
	if n2, _ := rdb.Get(ctx, "{gotx}n").Int(); n2 != n || rdb.Exists(ctx, "gotx:elsewhere").Val() != 0 {
		t.Fatalf("a refused transaction ran: %d", n2)
	}
	rdb.Del(ctx, "{gotx}n", "{gotx}log", "{gotx}w")
}

// TestClusterShardChannelMoved moves the slot of a shard channel a client
// is subscribed to through a cluster pool. Redis drops the subscription
// on the old owner with a sunsubscribe push; the proxy keeps it from the
// client and subscribes the channel again on the new owner, so that the
// client gets the channel's messages from there, each once, and counts
// stay right. A plain channel's subscription stays on its node when its
// slot moves: PUBLISH reaches every node. A SSUBSCRIBE that a node refuses with MOVED (the pool's
// map is stale) is made on the node named.
func TestClusterShardChannelMoved(t *testing.T) {
	c := testservers.NewCluster(t, testservers.ClusterOptions{Replicas: -1})
	addr, px := proxytest.StartClusterProxy(t, c)
	slotOf := func(k string) int { return hashring.ClusterSlot([]byte(k)) }
	other := func(n *testservers.ClusterNode) *testservers.ClusterNode {
		for _, p := range c.Primaries() {
			if p != n {
				return p
			}
		}
		return nil
	}
	sub, pub := proxytest.Dial(t, addr), proxytest.Dial(t, addr)
	confirm := func(kind, ch string, n int) string {
		return proxytest.Array(proxytest.Bulk(kind), proxytest.Bulk(ch), fmt.Sprintf(":%d\r\n", n))
	}
	if got := sub.Do("SSUBSCRIBE", "{smv}a"); got != confirm("ssubscribe", "{smv}a", 1) {
		t.Fatalf("SSUBSCRIBE: %q", got)
	}
	if got := sub.Do("SUBSCRIBE", "smv:plain"); got != confirm("subscribe", "smv:plain", 1) {
		t.Fatalf("SUBSCRIBE: %q", got)
	}
	src := c.Owner(slotOf("{smv}a"))
	dst := other(src)
	moveEmptySlot(t, c, slotOf("{smv}a"), dst)
	// Until the proxy subscribed again on dst, SPUBLISH reaches nobody.
	deadline := time.Now().Add(5 * time.Second)
	for pub.Do("SPUBLISH", "{smv}a", "probe") != ":1\r\n" {
		if time.Now().After(deadline) {
			t.Fatalf("the shard channel has no subscriber on its new owner: PUBSUB SHARDNUMSUB on %s: %q", dst.Addr,
				proxytest.Dial(t, dst.Addr).Do("PUBSUB", "SHARDNUMSUB", "{smv}a"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := range 5 {
		if got := pub.Do("SPUBLISH", "{smv}a", fmt.Sprint(i)); got != ":1\r\n" {
			t.Fatalf("SPUBLISH %d: %q", i, got)
		}
	}
	pub.Do("PUBLISH", "smv:plain", "plain")
	got := readMessages(t, sub, 7, 5*time.Second)
	want := []string{"smessage {smv}a probe", "smessage {smv}a 0", "smessage {smv}a 1", "smessage {smv}a 2", "smessage {smv}a 3",
		"smessage {smv}a 4", "message smv:plain plain"}
	if !slices.Equal(got, want) {
		t.Fatalf("after the move: %q, want %q", got, want)
	}
	if got := pub.Do("PUBSUB", "SHARDNUMSUB", "{smv}a"); got != proxytest.Array(proxytest.Bulk("{smv}a"), ":1\r\n") {
		t.Fatalf("PUBSUB SHARDNUMSUB after the move: %q", got)
	}
	if got := sub.Do("SUNSUBSCRIBE"); got != confirm("sunsubscribe", "{smv}a", 0) {
		t.Fatalf("SUNSUBSCRIBE: %q", got)
	}
	if n := proxytest.Dial(t, dst.Addr).Do("PUBSUB", "SHARDNUMSUB", "{smv}a"); n != proxytest.Array(proxytest.Bulk("{smv}a"), ":0\r\n") {
		t.Fatalf("PUBSUB SHARDNUMSUB on the new owner after SUNSUBSCRIBE: %q", n)
	}

	// A plain channel's slot moves: its subscription stays where it was
	// made, which every PUBLISH still reaches, and NUMSUB counts it.
	moveEmptySlot(t, c, slotOf("smv:plain"), other(c.Owner(slotOf("smv:plain"))))
	if got := pub.Do("PUBSUB", "NUMSUB", "smv:plain"); got != proxytest.Array(proxytest.Bulk("smv:plain"), ":1\r\n") {
		t.Fatalf("PUBSUB NUMSUB after the channel's slot moved: %q", got)
	}
	pub.Do("PUBLISH", "smv:plain", "again")
	if got := readMessages(t, sub, 1, 5*time.Second); !slices.Equal(got, []string{"message smv:plain again"}) {
		t.Fatalf("messages after the channel's slot moved: %q", got)
	}

	// A stale map: SSUBSCRIBE meets MOVED.
	src = c.Owner(slotOf("{smv2}a"))
	dst = other(src)
	moveEmptySlot(t, c, slotOf("{smv2}a"), dst)
	moved := px.Snapshot().Pools[0].Cluster.Moved
	if got := sub.Do("SSUBSCRIBE", "{smv2}a"); got != confirm("ssubscribe", "{smv2}a", 1) {
		t.Fatalf("SSUBSCRIBE of a moved slot: %q", got)
	}
	if px.Snapshot().Pools[0].Cluster.Moved == moved {
		t.Fatalf("SSUBSCRIBE met no MOVED")
	}
	if got := pub.Do("SPUBLISH", "{smv2}a", "x"); got != ":1\r\n" {
		t.Fatalf("SPUBLISH: %q", got)
	}
	if got := readMessages(t, sub, 1, 5*time.Second); !slices.Equal(got, []string{"smessage {smv2}a x"}) {
		t.Fatalf("messages: %q", got)
	}
}
