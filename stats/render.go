package stats

import (
	"encoding/json"
	"time"
)

// Render writes nutcracker's stats document from a snapshot, as one line
// of JSON: service fields (source is the host's name, proxy is
// "shardproxy" and the snapshot's version), shardproxy's configuration
// fields, then one object per pool holding its counters and one object per
// server. Read parses it back.
func Render(snap Snapshot, started time.Time, source string) []byte {
	doc := map[string]any{
		"service":   "nutcracker",
		"source":    source,
		"version":   "0.5.0",
		"proxy":     "shardproxy " + snap.Version,
		"uptime":    int64(snap.Time.Sub(started).Seconds()),
		"timestamp": snap.Time.Unix(),
	}
	doc["config_digest"] = snap.Config.Digest
	doc["reloads"] = snap.Config.Reloads
	doc["reload_failures"] = snap.Config.ReloadFailures
	doc["reload_error"] = snap.Config.LastReloadError
	// Connections, as nutcracker counts them: clients and servers, now
	// and ever.
	var curr, total int64
	for _, p := range snap.Pools {
		ps := map[string]any{
			"client_eof":            p.ClientEOF,
			"client_err":            p.ClientErr,
			"client_connections":    p.ClientConnections,
			"client_refused":        p.ClientRefused,
			"client_overflow":       p.ClientOverflow,
			"client_parked":         p.ClientParked,
			"client_buffered":       p.ClientBuffered,
			"server_ejects":         p.ServerEjects,
			"forward_error":         p.ForwardError,
			"fragments":             p.Fragments,
			"requests":              p.Requests,
			"migration_started":     oneIf(p.MigrationStarted),
			"migration_pending":     p.MigrationPending,
			"keys_migrated":         p.KeysMigrated,
			"migration_errors":      p.MigrationErrors,
			"keys_migrated_per_sec": p.MigrationKeysPerSec,
		}
		curr += p.ClientConnections
		total += p.ClientAccepted
		for _, s := range p.Servers {
			curr += s.ServerConnections
			total += s.Connects
			ps[s.Name] = map[string]any{
				"in_queue":           s.InQueue,
				"in_queue_bytes":     s.InQueueBytes,
				"out_queue":          s.OutQueue,
				"out_queue_bytes":    s.OutQueueBytes,
				"server_eof":         s.ServerEOF,
				"server_err":         s.ServerErr,
				"server_timedout":    s.ServerTimedout,
				"server_connections": s.ServerConnections,
				"server_ejected_at":  s.ServerEjectedAt,
				"requests":           s.Requests,
				"request_bytes":      s.RequestBytes,
				"responses":          s.Responses,
				"response_bytes":     s.ResponseBytes,
			}
			if p.Sentinel {
				srv := ps[s.Name].(map[string]any)
				srv["primary"] = s.Addr
				srv["failovers"] = s.Failovers
			}
			if p.Sentinel || p.Cluster != nil {
				ps[s.Name].(map[string]any)["replicas"] = append([]string{}, s.Replicas...)
			}
		}
		if p.Sentinel {
			ps["sentinels"] = p.Sentinels
			ps["sentinels_up"] = p.SentinelsUp
		}
		if p.Cluster != nil {
			clusterStats(ps, p.Cluster)
		}
		doc[p.Name] = ps
	}
	doc["curr_connections"] = curr
	doc["total_connections"] = total
	b, _ := json.Marshal(doc)
	return append(b, '\n')
}

// oneIf is 1 for true and 0 for false, as nutcracker's JSON shows flags.
func oneIf(b bool) int {
	if b {
		return 1
	}
	return 0
}

// clusterStats adds a cluster pool's fields to its object in the stats
// JSON, each named cluster_*: what its slot map is (epoch, nodes, slots
// covered, the node it came from and its age in milliseconds, -1 before
// the first), its refreshes, and the redirects and retries its requests
// cost. The pool's servers are the map's primaries; each lists the
// replicas its reads go to (replicas, with replica_reads).
func clusterStats(ps map[string]any, c *Cluster) {
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
