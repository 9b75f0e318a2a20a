//go:build linux

package metrics_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/hashring"
	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// currentEpoch is cluster_current_epoch of the node at addr.
func currentEpoch(t *testing.T, addr string) float64 {
	t.Helper()
	info, err := testservers.Do(addr, "CLUSTER", "INFO")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(info, "cluster_current_epoch:")
	s, _, _ := strings.Cut(rest, "\r\n")
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("CLUSTER INFO of %s: %q", addr, info)
	}
	return float64(n)
}

// TestClusterMetricsLive scrapes a proxy in front of a real cluster: every
// slot covered, the 6 nodes, the cluster's epoch, a fresh map, no
// redirect; then an empty slot is given to another primary
// (CLUSTER SETSLOT NODE), and a GET of a key there is followed through
// exactly one MOVED, which redirects_total{kind="moved"} counts.
func TestClusterMetricsLive(t *testing.T) {
	c := testservers.NewCluster(t, testservers.ClusterOptions{})
	listen := proxytest.FreeListen(t)
	_, maddr := startProxy(t, proxytest.ClusterYAML("cl", listen, []string{c.Nodes[0].Addr}))
	proxytest.WaitClusterReady(t, listen)
	pool := labels{"pool": "cl"}

	text, fams := scrape(t, maddr)
	promtoolCheck(t, text)
	for name, want := range map[string]float64{
		"shardproxy_cluster_slots_covered":           hashring.ClusterSlots,
		"shardproxy_cluster_nodes":                   6,
		"shardproxy_cluster_refresh_failures_total":  0,
		"shardproxy_cluster_retries_exhausted_total": 0,
		"shardproxy_pool_ready":                      1,
	} {
		if got := value(t, fams, name, pool); got != want {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
	for _, kind := range []string{"moved", "ask", "tryagain", "clusterdown"} {
		if got := value(t, fams, "shardproxy_cluster_redirects_total", labels{"pool": "cl", "kind": kind}); got != 0 {
			t.Errorf("redirects %s: %v, want 0", kind, got)
		}
	}
	if age := value(t, fams, "shardproxy_cluster_map_age_seconds", pool); age < 0 || age > 30 {
		t.Errorf("map age %v s", age)
	}
	epoch := currentEpoch(t, c.Nodes[0].Addr)
	waitFor(t, fmt.Sprintf("epoch metric %v", epoch), func() bool {
		_, fams := scrape(t, maddr)
		return value(t, fams, "shardproxy_cluster_epoch", pool) == currentEpoch(t, c.Nodes[0].Addr)
	})

	key := "metrics:moved"
	slot := strconv.Itoa(hashring.ClusterSlot([]byte(key)))
	owner := c.Owner(hashring.ClusterSlot([]byte(key)))
	var target *testservers.ClusterNode
	for _, p := range c.Primaries() {
		if p != owner {
			target = p
			break
		}
	}
	for _, n := range append([]*testservers.ClusterNode{target}, c.Primaries()...) {
		if got, err := testservers.Do(n.Addr, "CLUSTER", "SETSLOT", slot, "NODE", target.ID); err != nil || got != "+OK" {
			t.Fatalf("CLUSTER SETSLOT on %s: %q %v", n.Addr, got, err)
		}
	}
	if got := proxytest.Command(t, listen, "GET", key); got != "(nil)" {
		t.Fatalf("GET %s: %q", key, got)
	}
	_, fams = scrape(t, maddr)
	if got := value(t, fams, "shardproxy_cluster_redirects_total", labels{"pool": "cl", "kind": "moved"}); got != 1 {
		t.Errorf("moved redirects after one GET of a moved slot: %v, want 1", got)
	}
}
