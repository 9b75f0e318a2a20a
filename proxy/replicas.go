package proxy

import (
	"github.com/shardproxy/shardproxy/failover"
	"github.com/shardproxy/shardproxy/pools"
)

// With replica_reads, a read-only command of a shard goes to one of its
// replicas (routing.go's readServer chooses it). A read a replica does
// not serve (its call failed, or it refused: failover.Refuses) is sent to
// the primary before the client is answered (retryOnPrimary).

// replicaRead is a call of a batch sent to a replica, and the primary it
// goes to if the replica does not serve it.
type replicaRead struct {
	call    int // index in batch.calls
	primary *pools.Server
}

// viaReplica records that the call just sent went to a replica of
// primary; a nil primary records nothing.
func (bt *batch) viaReplica(primary *pools.Server) {
	if primary != nil {
		bt.replicaReads = append(bt.replicaReads, replicaRead{call: bt.ncalls - 1, primary: primary})
	}
}

// retryOnPrimary sends each read of the batch that a replica did not serve
// (its call failed, or the replica refused it, or in a cluster answered a
// redirect: clusterReplicaRefuses) to its primary, on the client's
// connection there. It reports whether it sent any: the client
// then waits for them too before it writes the batch's replies, which so
// keep their order. Only read-only commands go to replicas, so running one
// twice changes nothing.
func (cl *client) retryOnPrimary(bt *batch) bool {
	sent := false
	for _, rr := range bt.replicaReads {
		c := bt.calls[rr.call]
		if c.Err == nil && !failover.Refuses(c.Reply) && !cl.clusterReplicaRefuses(c.Reply) {
			continue
		}
		if !sent {
			clear(bt.conns)
			bt.conns = bt.conns[:0]
			sent = true
		}
		cl.countReplicaFallback()
		frame, kind := c.Frame, c.Kind
		c.Reset(64 << 10)
		c.Frame, c.Kind, c.Done = frame, kind, cl
		conn := cl.conn(rr.primary)
		cl.pending.Add(1)
		conn.Enqueue(c)
		bt.addConn(conn)
	}
	return sent
}
