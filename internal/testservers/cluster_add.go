package testservers

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// AddNode starts one more node with the options of the others and joins it
// to the cluster as an empty primary (redis-cli --cluster add-node), then
// waits until every node that is up knows every other and the new node
// agrees with the others on CLUSTER SLOTS, so that redis-cli --cluster
// reshard accepts the cluster. The new node owns no slot: WaitHealthy,
// which wants every node in the slot map, fails until a reshard gives it
// some.
func (c *Cluster) AddNode(tb testing.TB) *ClusterNode {
	tb.Helper()
	c.mustOwn("AddNode")
	cli := Need(tb, "redis-cli")
	s := RedisOn(tb, "127.0.0.1", FreeClusterPort(tb, "127.0.0.1"), c.args...)
	id, err := query(s.Addr, "", "CLUSTER", "MYID")
	if err != nil {
		tb.Fatalf("cluster node %s: CLUSTER MYID: %v", s.Addr, err)
	}
	up := c.Up()
	n := &ClusterNode{Server: s, ID: fmt.Sprint(id)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := []string{"--cluster", "add-node", s.Addr, up[0].Addr}
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		tb.Fatalf("redis-cli %v: %v\n%s", args, err, out)
	}
	c.Nodes = append(c.Nodes, n)
	deadline := time.Now().Add(30 * time.Second)
	for {
		err = c.joined(append(up, n))
		if err == nil {
			return n
		}
		if time.Now().After(deadline) {
			tb.Fatalf("node %s not joined after 30s: %v", s.Addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// joined reports why nodes do not all know each other and agree on
// CLUSTER SLOTS yet, or nil when they do.
func (c *Cluster) joined(nodes []*ClusterNode) error {
	var first []slotRange
	for i, n := range nodes {
		info, err := query(n.Addr, "", "CLUSTER", "INFO")
		if err != nil {
			return fmt.Errorf("%s: CLUSTER INFO: %w", n.Addr, err)
		}
		want := fmt.Sprintf("cluster_known_nodes:%d\r\n", len(nodes))
		if s := fmt.Sprint(info); !strings.Contains(s, want) || !strings.Contains(s, "cluster_state:ok") {
			return fmt.Errorf("%s: want %q and cluster_state:ok in %s", n.Addr, strings.TrimSpace(want), s)
		}
		ranges, err := clusterSlots(n.Addr)
		if err != nil {
			return err
		}
		if i == 0 {
			first = ranges
		} else if !slices.EqualFunc(first, ranges, sameRange) {
			return fmt.Errorf("%s and %s differ in CLUSTER SLOTS", nodes[0].Addr, n.Addr)
		}
	}
	return nil
}
