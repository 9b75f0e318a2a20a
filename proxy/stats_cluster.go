package proxy

// clusterStats adds a cluster pool's fields to its object in the stats
// JSON, each named cluster_*: what its slot map is (epoch, nodes, slots
// covered, the node it came from and its age in milliseconds, -1 before
// the first), its refreshes, and the redirects and retries its requests
// cost. The pool's servers are the map's primaries; each lists the
// replicas its reads go to (replicas, with replica_reads).
func clusterStats(ps map[string]any, c *ClusterSnapshot) {
	age := int64(-1)
	if c.MapAge >= 0 {
		age = c.MapAge.Milliseconds()
	}
	ps["cluster_epoch"] = c.Epoch
	ps["cluster_nodes"] = c.Nodes
	ps["cluster_slots_covered"] = c.SlotsCovered
	ps["cluster_map_from"] = c.MapFrom
	ps["cluster_map_age_ms"] = age
	ps["cluster_refreshes"] = c.Refreshes
	ps["cluster_refresh_failures"] = c.RefreshFailures
	ps["cluster_stale_views"] = c.StaleViews
	ps["cluster_refresh_error"] = c.LastRefreshError
	ps["cluster_moved"] = c.Moved
	ps["cluster_ask"] = c.Ask
	ps["cluster_tryagain"] = c.TryAgain
	ps["cluster_clusterdown"] = c.ClusterDown
	ps["cluster_unsent_retries"] = c.UnsentRetries
	ps["cluster_retries_exhausted"] = c.RetriesExhausted
	ps["cluster_replica_fallbacks"] = c.ReplicaFallbacks
}
