//go:build linux

package proxy_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/hashring"
	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/proxy"
	"github.com/shardproxy/shardproxy/stats"
)

// TestClusterStatsJSON reads the stats JSON of a cluster pool with
// replica_reads: its object has the cluster_* fields of its slot map (all
// 16384 slots covered, the cluster's 6 nodes, the epoch its node reports
// in CLUSTER INFO) and counters, and its servers are the 3 primaries,
// each listing its replica.
func TestClusterStatsJSON(t *testing.T) {
	c := testservers.SharedCluster(t)
	listen := proxytest.FreeListen(t)
	px := proxytest.StartProxyOpts(t, proxytest.ClusterYAML("cl", listen, []string{c.Nodes[0].Addr}, "replica_reads: true"),
		proxy.Options{StatsAddr: "127.0.0.1:0"})
	proxytest.WaitClusterReady(t, listen)
	waitClusterReplicas(t, c, px, 10*time.Second)

	doc := proxytest.FetchStats(t, px.StatsAddr().String())
	pool, ok := doc["cl"].(map[string]any)
	if !ok {
		t.Fatalf("no pool cl in %v", doc)
	}
	from, _ := pool["cluster_map_from"].(string)
	if c.NodeAt(from) == nil {
		t.Fatalf("cluster_map_from %q is no node of the cluster", from)
	}
	info, err := testservers.Do(from, "CLUSTER", "INFO")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(info, "cluster_current_epoch:")
	epoch, _, _ := strings.Cut(rest, "\r\n")
	want := map[string]any{
		"cluster_slots_covered":     float64(hashring.ClusterSlots),
		"cluster_nodes":             float64(len(c.Nodes)),
		"cluster_epoch":             fmt.Sprint(epoch),
		"cluster_refresh_failures":  float64(0),
		"cluster_stale_views":       float64(0),
		"cluster_refresh_error":     "",
		"cluster_moved":             float64(0),
		"cluster_ask":               float64(0),
		"cluster_tryagain":          float64(0),
		"cluster_clusterdown":       float64(0),
		"cluster_unsent_retries":    float64(0),
		"cluster_retries_exhausted": float64(0),
		"cluster_replica_fallbacks": float64(0),
	}
	for k, w := range want {
		got := pool[k]
		if k == "cluster_epoch" {
			got = fmt.Sprint(got)
		}
		if got != w {
			t.Errorf("%s: %v, want %v", k, got, w)
		}
	}
	if n, _ := pool["cluster_refreshes"].(float64); n < 1 {
		t.Errorf("cluster_refreshes %v, want at least 1", pool["cluster_refreshes"])
	}
	if age, _ := pool["cluster_map_age_ms"].(float64); age < 0 || age > float64(stats.ClusterMapMaxAge.Milliseconds()) {
		t.Errorf("cluster_map_age_ms %v, want 0 to %v", pool["cluster_map_age_ms"], stats.ClusterMapMaxAge.Milliseconds())
	}
	var servers []string
	for k, v := range pool {
		srv, ok := v.(map[string]any)
		if !ok {
			continue
		}
		servers = append(servers, k)
		p := c.NodeAt(k)
		if p == nil {
			t.Fatalf("server %s is no node of the cluster", k)
		}
		var wantR []any
		for _, r := range c.ReplicasOf(p) {
			wantR = append(wantR, r.Addr)
		}
		if got, _ := srv["replicas"].([]any); fmt.Sprint(got) != fmt.Sprint(wantR) {
			t.Errorf("server %s: replicas %v, want %v", k, got, wantR)
		}
	}
	var primaries []string
	for _, p := range c.Primaries() {
		primaries = append(primaries, p.Addr)
	}
	slices.Sort(servers)
	slices.Sort(primaries)
	if !slices.Equal(servers, primaries) {
		t.Errorf("servers %v, want the primaries %v", servers, primaries)
	}
}
