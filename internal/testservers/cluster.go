package testservers

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/freeport"
)

// ClusterBusOffset is what Redis adds to a cluster node's port for its
// cluster bus port.
const ClusterBusOffset = 10000

// ClusterSlots is the number of hash slots of a Redis Cluster.
const ClusterSlots = 16384

// ClusterOptions configure a Redis Cluster; the zero value gives three
// primaries with one replica each and a node timeout of 2 s.
type ClusterOptions struct {
	// Primaries is how many primaries share the slots. Default 3, the
	// fewest redis-cli --cluster create accepts.
	Primaries int
	// Replicas is how many replicas each primary has: 0 means the
	// default, 1; a negative value means none.
	Replicas int
	// NodeTimeout is cluster-node-timeout: how long a node may not answer
	// before the others count it as failing. Default 2 s.
	NodeTimeout time.Duration
	// Extra are further redis-server arguments for every node.
	Extra []string
}

func (o ClusterOptions) withDefaults() ClusterOptions {
	if o.Primaries == 0 {
		o.Primaries = 3
	}
	switch {
	case o.Replicas == 0:
		o.Replicas = 1
	case o.Replicas < 0:
		o.Replicas = 0
	}
	if o.NodeTimeout <= 0 {
		o.NodeTimeout = 2 * time.Second
	}
	return o
}

// ClusterNode is one redis-server of a Cluster. Its ID, the cluster node
// id, lives in the node's cluster configuration file and so survives a
// Restart. Its role and slots change with failovers: ask the Cluster
// (Role, Slots), whose view WaitHealthy refreshes.
type ClusterNode struct {
	*Server
	ID string
}

// Cluster is a running Redis Cluster made of real redis-server processes on
// loopback ports, each with its cluster bus port (port + ClusterBusOffset)
// reserved too.
type Cluster struct {
	Nodes []*ClusterNode // in the order they were started
	opts  ClusterOptions
	args  []string // redis-server arguments of every node
	tb    testing.TB

	mu   sync.Mutex
	down map[*ClusterNode]bool // killed or paused: left out of waits
	view clusterView
}

// NewCluster starts opts.Primaries*(1+opts.Replicas) nodes with
// cluster-enabled, joins them with redis-cli --cluster create, and waits
// until every node reports cluster_state:ok, all nodes return the same
// CLUSTER SLOTS, and every replica is in sync with its primary. The nodes
// stop when tb ends. Replicas ping their primary every second
// (repl-ping-replica-period 1, not 10): CLUSTER SLOTS lists a replica only
// once its replication offset is not 0, which a primary that has no writes
// moves only with those pings. A package whose tests only read and write through the
// cluster should share one: see SharedCluster.
func NewCluster(tb testing.TB, opts ClusterOptions) *Cluster {
	tb.Helper()
	opts = opts.withDefaults()
	cli := Need(tb, "redis-cli")
	c := &Cluster{opts: opts, tb: tb, down: map[*ClusterNode]bool{}}
	n := opts.Primaries * (1 + opts.Replicas)
	args := []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
		"--cluster-node-timeout", strconv.FormatInt(max(opts.NodeTimeout.Milliseconds(), 1), 10),
		"--repl-diskless-sync-delay", "0", "--repl-ping-replica-period", "1"}
	args = append(args, opts.Extra...)
	c.args = args
	create := []string{"--cluster", "create"}
	for range n {
		s := RedisOn(tb, "127.0.0.1", FreeClusterPort(tb, "127.0.0.1"), args...)
		id, err := query(s.Addr, "", "CLUSTER", "MYID")
		if err != nil {
			tb.Fatalf("cluster node %s: CLUSTER MYID: %v", s.Addr, err)
		}
		c.Nodes = append(c.Nodes, &ClusterNode{Server: s, ID: fmt.Sprint(id)})
		create = append(create, s.Addr)
	}
	create = append(create, "--cluster-replicas", strconv.Itoa(opts.Replicas), "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, create...).CombinedOutput(); err != nil {
		tb.Fatalf("redis-cli %v: %v\n%s", create, err, out)
	}
	c.WaitHealthy(tb, 30*time.Second)
	return c
}

// FreeClusterPort returns a port of host, as FreePort does, for a cluster
// node: the port and the port + ClusterBusOffset of its cluster bus were
// both free a moment ago, both lie below the ephemeral range, and neither
// has been handed out before nor will be again.
func FreeClusterPort(tb testing.TB, host string) int {
	tb.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	low := freeport.EphemeralLow()
	p, err := freeport.Pick(host, func(p int) bool {
		bus := p + ClusterBusOffset
		return handedOut[p] || handedOut[bus] || bus >= low || !canListen(host, bus) || !freeport.Claim(bus)
	})
	if err != nil {
		tb.Fatalf("cluster node port: %v", err)
	}
	handedOut[p] = true
	handedOut[p+ClusterBusOffset] = true
	return p
}

// canListen reports whether host:port accepted a listen just now.
func canListen(host string, port int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// Kill stops n with SIGKILL; waits leave it out until Restart.
func (c *Cluster) Kill(n *ClusterNode) {
	c.mustOwn("Kill")
	c.setDown(n, true)
	n.Server.Kill()
}

// Restart kills n and starts it again on the same address with the same
// data directory, so with its node id and cluster configuration. It waits
// only until n accepts connections; WaitHealthy waits for the cluster.
func (c *Cluster) Restart(n *ClusterNode) {
	c.mustOwn("Restart")
	n.Server.Restart()
	c.setDown(n, false)
}

// Stop pauses n with SIGSTOP: it keeps its sockets but answers nothing,
// neither clients nor the cluster bus. Waits leave it out until Continue.
func (c *Cluster) Stop(n *ClusterNode) {
	c.mustOwn("Stop")
	c.setDown(n, true)
	n.Server.Stop()
}

// Continue resumes a node paused with Stop.
func (c *Cluster) Continue(n *ClusterNode) {
	c.mustOwn("Continue")
	n.Server.Continue()
	c.setDown(n, false)
}

func (c *Cluster) setDown(n *ClusterNode, down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down[n] = down
}

// mustOwn panics for a shared cluster, which other tests use meanwhile: a
// mistake of the test that asks.
func (c *Cluster) mustOwn(op string) {
	if _, shared := c.tb.(*packageTB); shared {
		panic("testservers: " + op + " on the shared cluster, which other tests use: make one with NewCluster")
	}
}

// Up returns the nodes that are neither killed nor paused.
func (c *Cluster) Up() []*ClusterNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	var up []*ClusterNode
	for _, n := range c.Nodes {
		if !c.down[n] {
			up = append(up, n)
		}
	}
	return up
}

// Node returns the node with the given id, or nil.
func (c *Cluster) Node(id string) *ClusterNode {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// NodeAt returns the node listening on addr (host:port), or nil.
func (c *Cluster) NodeAt(addr string) *ClusterNode {
	for _, n := range c.Nodes {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

// Primaries returns the nodes that owned slots at the last WaitHealthy,
// in the order of their first slot.
func (c *Cluster) Primaries() []*ClusterNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ps []*ClusterNode
	for _, r := range c.view.ranges {
		if n := c.Node(r.primary); n != nil && !slices.Contains(ps, n) {
			ps = append(ps, n)
		}
	}
	return ps
}

// ReplicasOf returns the replicas of primary at the last WaitHealthy.
func (c *Cluster) ReplicasOf(primary *ClusterNode) []*ClusterNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	var rs []*ClusterNode
	for _, n := range c.Nodes {
		if c.view.primaryOf[n.ID] == primary.ID {
			rs = append(rs, n)
		}
	}
	return rs
}

// Role returns "master" or "slave", n's role at the last WaitHealthy, or ""
// for a node the cluster did not list then.
func (c *Cluster) Role(n *ClusterNode) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.view.role[n.ID]
}

// Slots returns the slot ranges (first and last slot, both included) that n
// owned at the last WaitHealthy.
func (c *Cluster) Slots(n *ClusterNode) [][2]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out [][2]int
	for _, r := range c.view.ranges {
		if r.primary == n.ID {
			out = append(out, [2]int{r.first, r.last})
		}
	}
	return out
}

// Owner returns the primary that owned slot at the last WaitHealthy, or
// nil.
func (c *Cluster) Owner(slot int) *ClusterNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.view.ranges {
		if slot >= r.first && slot <= r.last {
			return c.Node(r.primary)
		}
	}
	return nil
}

// KeySlot returns the slot of key as the cluster computes it (CLUSTER
// KEYSLOT on a node that is up).
func (c *Cluster) KeySlot(tb testing.TB, key string) int {
	tb.Helper()
	var err error
	for _, n := range c.Up() {
		var v any
		if v, err = query(n.Addr, "", "CLUSTER", "KEYSLOT", key); err == nil {
			if s, ok := v.(int64); ok {
				return int(s)
			}
			err = fmt.Errorf("CLUSTER KEYSLOT: unexpected reply %v", v)
		}
	}
	tb.Fatalf("slot of %q: %v", key, err)
	return -1
}
