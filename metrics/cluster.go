package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardproxy/shardproxy/stats"
)

// A cluster pool's (redis_cluster) metrics are named shardproxy_cluster_*,
// with the pool as label, from its stats.Cluster: what its slot
// map is, how its refreshes fare, and what redirects cost. Other pools
// have none of them.

// clusterMetric is one metric with a value per cluster pool.
type clusterMetric struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType
	value func(c *stats.Cluster) float64
}

func clusterDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "cluster", name), help, []string{"pool"}, nil)
}

// clusterMetrics are a cluster pool's values but its redirects and its
// map's age.
var clusterMetrics = []clusterMetric{
	{clusterDesc("slots_covered", "Slots of the 16384 of the cluster that have a primary in the pool's slot map (cluster_slots_covered)."),
		prometheus.GaugeValue, func(c *stats.Cluster) float64 { return float64(c.SlotsCovered) }},
	{clusterDesc("epoch", "Current epoch of the node the pool's slot map came from (cluster_epoch)."),
		prometheus.GaugeValue, func(c *stats.Cluster) float64 { return float64(c.Epoch) }},
	{clusterDesc("nodes", "Cluster nodes the pool knows: primaries, replicas, and nodes met in redirects (cluster_nodes)."),
		prometheus.GaugeValue, func(c *stats.Cluster) float64 { return float64(c.Nodes) }},
	{clusterDesc("refreshes_total", "Refreshes of the slot map tried (cluster_refreshes)."),
		prometheus.CounterValue, func(c *stats.Cluster) float64 { return counter(c.Refreshes) }},
	{clusterDesc("refresh_failures_total", "Refreshes of the slot map for which no node gave a map (cluster_refresh_failures)."),
		prometheus.CounterValue, func(c *stats.Cluster) float64 { return counter(c.RefreshFailures) }},
	{clusterDesc("stale_views_total", "Slot maps refused because their node's epoch was older than the map's (cluster_stale_views)."),
		prometheus.CounterValue, func(c *stats.Cluster) float64 { return counter(c.StaleViews) }},
	{clusterDesc("unsent_retries_total", "Requests sent again because their connection failed before they were written (cluster_unsent_retries)."),
		prometheus.CounterValue, func(c *stats.Cluster) float64 { return counter(c.UnsentRetries) }},
	{clusterDesc("retries_exhausted_total", "Requests whose error went to the client once cluster_retry_timeout or the redirect bound ran out (cluster_retries_exhausted)."),
		prometheus.CounterValue, func(c *stats.Cluster) float64 { return counter(c.RetriesExhausted) }},
	{clusterDesc("replica_fallbacks_total", "Reads (replica_reads) a replica did not serve, sent to the slot's primary (cluster_replica_fallbacks)."),
		prometheus.CounterValue, func(c *stats.Cluster) float64 { return counter(c.ReplicaFallbacks) }},
}

var (
	clusterRedirectsDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "cluster", "redirects_total"),
		"Requests the cluster did not run and the pool sent again, by kind: moved, ask, tryagain, clusterdown (cluster_moved and the like).",
		[]string{"pool", "kind"}, nil)
	clusterMapAgeDesc = clusterDesc("map_age_seconds",
		"Age of the pool's slot map (cluster_map_age_ms); absent before the first map, when slots_covered is 0.")
)

// describeCluster sends the descriptions of the cluster metrics.
func describeCluster(ch chan<- *prometheus.Desc) {
	for _, m := range clusterMetrics {
		ch <- m.desc
	}
	ch <- clusterRedirectsDesc
	ch <- clusterMapAgeDesc
}

// collectCluster sends the cluster metrics of pool p, if a cluster pool.
func collectCluster(ch chan<- prometheus.Metric, p *stats.Pool) {
	c := p.Cluster
	if c == nil {
		return
	}
	for _, m := range clusterMetrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.typ, m.value(c), p.Name)
	}
	for _, r := range [...]struct {
		kind string
		n    int64
	}{{"moved", c.Moved}, {"ask", c.Ask}, {"tryagain", c.TryAgain}, {"clusterdown", c.ClusterDown}} {
		ch <- prometheus.MustNewConstMetric(clusterRedirectsDesc, prometheus.CounterValue, counter(r.n), p.Name, r.kind)
	}
	if c.MapAge >= 0 {
		ch <- prometheus.MustNewConstMetric(clusterMapAgeDesc, prometheus.GaugeValue, c.MapAge.Seconds(), p.Name)
	}
}
