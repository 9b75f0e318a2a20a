package metrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shardproxy/shardproxy/metrics"
	"github.com/shardproxy/shardproxy/stats"
)

// clusterSnapshot has a cluster pool with every counter set, one before
// its first map, and a pool that is no cluster.
func clusterSnapshot() stats.Snapshot {
	return stats.Snapshot{Time: time.Now(), Pools: []stats.Pool{
		{Name: "cl", Redis: true, Listening: true, Cluster: &stats.Cluster{
			Epoch: 7, Nodes: 6, SlotsCovered: 16000, MapFrom: "127.0.0.1:7000", MapAge: 1500 * time.Millisecond,
			Refreshes: 40, RefreshFailures: 3, StaleViews: 2, Moved: 11, Ask: 5, TryAgain: 4, ClusterDown: 9,
			UnsentRetries: 6, RetriesExhausted: 1, ReplicaFallbacks: 8}},
		{Name: "fresh", Redis: true, Listening: true, Cluster: &stats.Cluster{MapAge: -1, RefreshFailures: 1}},
		{Name: "plain", Redis: true, Listening: true, Servers: []stats.Server{{Name: "a", InRing: true}}},
	}}
}

// TestClusterMetrics checks the shardproxy_cluster_* series of a cluster
// snapshot, value for value: redirects by kind, the map's age in seconds
// (absent before the first map), none for a pool that is no cluster; and
// lints them through a pedantic registry.
func TestClusterMetrics(t *testing.T) {
	c := metrics.NewCollector(fakeSource{clusterSnapshot()})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	want := `
# HELP shardproxy_cluster_redirects_total Requests the cluster did not run and the pool sent again, by kind: moved, ask, tryagain, clusterdown (cluster_moved and the like).
# TYPE shardproxy_cluster_redirects_total counter
shardproxy_cluster_redirects_total{kind="ask",pool="cl"} 5
shardproxy_cluster_redirects_total{kind="clusterdown",pool="cl"} 9
shardproxy_cluster_redirects_total{kind="moved",pool="cl"} 11
shardproxy_cluster_redirects_total{kind="tryagain",pool="cl"} 4
shardproxy_cluster_redirects_total{kind="ask",pool="fresh"} 0
shardproxy_cluster_redirects_total{kind="clusterdown",pool="fresh"} 0
shardproxy_cluster_redirects_total{kind="moved",pool="fresh"} 0
shardproxy_cluster_redirects_total{kind="tryagain",pool="fresh"} 0
# HELP shardproxy_cluster_map_age_seconds Age of the pool's slot map (cluster_map_age_ms); absent before the first map, when slots_covered is 0.
# TYPE shardproxy_cluster_map_age_seconds gauge
shardproxy_cluster_map_age_seconds{pool="cl"} 1.5
# HELP shardproxy_cluster_slots_covered Slots of the 16384 of the cluster that have a primary in the pool's slot map (cluster_slots_covered).
# TYPE shardproxy_cluster_slots_covered gauge
shardproxy_cluster_slots_covered{pool="cl"} 16000
shardproxy_cluster_slots_covered{pool="fresh"} 0
# HELP shardproxy_cluster_epoch Current epoch of the node the pool's slot map came from (cluster_epoch).
# TYPE shardproxy_cluster_epoch gauge
shardproxy_cluster_epoch{pool="cl"} 7
shardproxy_cluster_epoch{pool="fresh"} 0
# HELP shardproxy_cluster_nodes Cluster nodes the pool knows: primaries, replicas, and nodes met in redirects (cluster_nodes).
# TYPE shardproxy_cluster_nodes gauge
shardproxy_cluster_nodes{pool="cl"} 6
shardproxy_cluster_nodes{pool="fresh"} 0
# HELP shardproxy_cluster_refreshes_total Refreshes of the slot map tried (cluster_refreshes).
# TYPE shardproxy_cluster_refreshes_total counter
shardproxy_cluster_refreshes_total{pool="cl"} 40
shardproxy_cluster_refreshes_total{pool="fresh"} 0
# HELP shardproxy_cluster_refresh_failures_total Refreshes of the slot map for which no node gave a map (cluster_refresh_failures).
# TYPE shardproxy_cluster_refresh_failures_total counter
shardproxy_cluster_refresh_failures_total{pool="cl"} 3
shardproxy_cluster_refresh_failures_total{pool="fresh"} 1
# HELP shardproxy_cluster_stale_views_total Slot maps refused because their node's epoch was older than the map's (cluster_stale_views).
# TYPE shardproxy_cluster_stale_views_total counter
shardproxy_cluster_stale_views_total{pool="cl"} 2
shardproxy_cluster_stale_views_total{pool="fresh"} 0
# HELP shardproxy_cluster_unsent_retries_total Requests sent again because their connection failed before they were written (cluster_unsent_retries).
# TYPE shardproxy_cluster_unsent_retries_total counter
shardproxy_cluster_unsent_retries_total{pool="cl"} 6
shardproxy_cluster_unsent_retries_total{pool="fresh"} 0
# HELP shardproxy_cluster_retries_exhausted_total Requests whose error went to the client once cluster_retry_timeout or the redirect bound ran out (cluster_retries_exhausted).
# TYPE shardproxy_cluster_retries_exhausted_total counter
shardproxy_cluster_retries_exhausted_total{pool="cl"} 1
shardproxy_cluster_retries_exhausted_total{pool="fresh"} 0
# HELP shardproxy_cluster_replica_fallbacks_total Reads (replica_reads) a replica did not serve, sent to the slot's primary (cluster_replica_fallbacks).
# TYPE shardproxy_cluster_replica_fallbacks_total counter
shardproxy_cluster_replica_fallbacks_total{pool="cl"} 8
shardproxy_cluster_replica_fallbacks_total{pool="fresh"} 0
`
	var names []string
	for _, l := range strings.Split(want, "\n") {
		if name, ok := strings.CutPrefix(l, "# TYPE "); ok {
			names = append(names, strings.Fields(name)[0])
		}
	}
	if len(names) != 11 {
		t.Fatalf("%d names in the expected text, want 11", len(names))
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
}
