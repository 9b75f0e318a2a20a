package proxy

import (
	"github.com/shardproxy/shardproxy/cluster"
	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/pools"
)

// In a cluster pool with replica_reads, a read-only command goes to a
// replica of its slot's primary, as the slot map lists them
// (routing.clusterReplicas), spread by client, among those known to
// serve (pools.Server.Up; the pool's prober checks the others each
// second). Every node connection of such a pool sends READONLY in its
// handshake: a replica then serves reads of its primary's slots instead
// of answering MOVED, and a primary ignores it. A read the replica does
// not serve, because its call failed, it refused (failover.Refuses: it
// is loading, say) or it answered a cluster redirect (MOVED: it
// replicates another primary now; CLUSTERDOWN), goes to the primary
// before the client is answered (retryOnPrimary), and from there
// followCluster follows any redirect: no such reply reaches the client.
// Writes never go to replicas.

// readonlyFrame makes a cluster replica serve reads of its primary's
// slots on its connection.
var readonlyFrame = resp.AppendCommand(nil, []byte("READONLY"))

// clusterHandshake is what the handshake of a cluster pool's node
// connections adds: READONLY with replica_reads. The pool sends it to
// every node, since a node's role changes with failovers.
func clusterHandshake(cfg *config.Pool) [][]byte {
	if cfg.RedisCluster && cfg.Sentinel.ReplicaReads {
		return [][]byte{readonlyFrame}
	}
	return nil
}

// clusterReplica returns the replica of ring index i's primary that
// client id reads from: the first known to serve, from the one id
// falls on; nil when none is.
func (rt *routing) clusterReplica(i int, id uint64) *pools.Server {
	if i >= len(rt.clusterReplicas) {
		return nil
	}
	rs := rt.clusterReplicas[i]
	for j := range rs {
		if r := rs[(id+uint64(j))%uint64(len(rs))]; r.Up() {
			return r
		}
	}
	return nil
}

// clusterReplicaRefuses tells a replica's reply that does not serve a
// read in a cluster pool: a redirect (MOVED, ASK), TRYAGAIN or
// CLUSTERDOWN. The primary answers it instead, and the map is
// refreshed: a replica that redirects replicates another primary now,
// or has left the cluster.
func (cl *client) clusterReplicaRefuses(reply []byte) bool {
	cs := cl.p.cluster
	if cs == nil || len(reply) == 0 || reply[0] != '-' {
		return false
	}
	if kind, _, _ := cluster.Classify(reply, ""); kind == cluster.Served {
		return false
	}
	cs.topo.Refresh()
	return true
}

// probeClusterReplicas starts a check of each replica in rt's slot map
// not known to serve, when the pool reads from replicas: reads go to a
// replica only once it is known to serve.
func probeClusterReplicas(rt *routing) {
	if !rt.replicaReads {
		return
	}
	for _, rs := range rt.clusterReplicas {
		for _, r := range rs {
			if !r.Up() {
				r.Probe()
			}
		}
	}
}

// clusterReplicaAddrs appends the addresses of the replicas of ring
// index i that reads go to now (those known to serve), for stats.
func (rt *routing) clusterReplicaAddrs(dst []string, i int) []string {
	if !rt.replicaReads || i >= len(rt.clusterReplicas) {
		return dst
	}
	for _, r := range rt.clusterReplicas[i] {
		if r.Up() {
			dst = append(dst, r.Addr())
		}
	}
	return dst
}

// countReplicaFallback counts, in a cluster pool, a read a replica did not
// serve that goes to the primary (stats.Cluster.ReplicaFallbacks).
func (cl *client) countReplicaFallback() {
	if cs := cl.p.cluster; cs != nil {
		cs.keeper.ReplicaFallbacks.Add(1)
	}
}
