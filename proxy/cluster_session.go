package proxy

import (
	"github.com/shardproxy/shardproxy/cluster"
	"github.com/shardproxy/shardproxy/commands"
	"github.com/shardproxy/shardproxy/pools"
)

// Sessions in a cluster pool (redis_cluster). A transaction, its watch
// and a blocking command run on one node, the owner of the slot of their
// first key by the pool's map, and the rule is Redis Cluster's: one slot.
// Keys of other slots of the same node are the node's business, which
// answers as it does (-CROSSSLOT at EXEC for a transaction over two of
// its slots). Keys whose slot lives on another node get the answer a
// node that held both slots would give: a command inside MULTI is
// +QUEUED and EXEC answers -CROSSSLOT, nothing run; a WATCH, whose keys
// a node would watch, is answered -CROSSSLOT, since the transaction that
// follows could not run on both nodes. A command whose own keys span
// slots is answered -CROSSSLOT, and dooms a transaction, as on a node.
//
// The map may be stale. A MOVED to the command that chose the session's
// node moves the session to the slot's owner (MULTI and the commands
// queued before sent there again); a MOVED later in the session, or an
// ASK (the slot is migrating), cannot be followed by a session that
// lives on one node: the command is answered -TRYAGAIN, which dooms a
// transaction, so that the client runs it again, on the new owner. A
// blocking command follows MOVED and ASK (glued behind ASKING) to the
// node named, as many times as maxRedirects allows. No MOVED or ASK
// reaches a client.

const (
	errSessionMoved     = "TRYAGAIN the slot of the keys moved to another node during the transaction or watch: run it again"
	errSessionMigrating = "TRYAGAIN the slot of the keys is migrating to another node: run the transaction or watch again"
)

// owedFrames are the keyless commands of a transaction queued before its
// server was known (session.queued), kept to send them again when the
// session moves to another node.
type owedFrames struct {
	frames []byte
	n      int
}

// otherNode serves a command of a session whose keys' slot lives on
// another node than the session's (ring index si).
func (r *redisProto) otherNode(cl *client, bt *batch, cmd *commands.Command, args [][]byte, frame []byte, si int, blocking bool) {
	s := cl.sess
	switch {
	case s.multi && cmd.Sess == commands.SessWatch:
		r.reject(cl, bt, errWatchInMulti)
	case s.multi:
		// As a node that held both slots: queued, and EXEC answers
		// -CROSSSLOT.
		s.crossSlot = true
		localReply(bt, queuedReply)
	case cmd.Sess == commands.SessWatch:
		errorReply(bt, crossSlot)
	case blocking: // watching: it blocks on a connection of its own
		r.blockAside(cl, bt, si, frame)
	default: // watching: served as any other command
		r.route(cl, bt, cmd, args, frame)
	}
}

// clusterSessionDo is sessionDo in a cluster pool: a MOVED answered to
// the command that chose the session's node (fresh) moves the session to
// the node named, with what the transaction owed its server; any other
// MOVED or ASK is answered -TRYAGAIN.
func (r *redisProto) clusterSessionDo(cl *client, bt *batch, frame []byte, fresh bool, owed owedFrames) {
	cs := cl.p.cluster
	for redirects := 0; ; redirects++ {
		s := cl.sess
		rep, err := r.roundTrip(s, frame)
		if err != nil {
			r.sessionFailed(cl, bt, err)
			return
		}
		kind, slot, addr := cluster.Classify(rep, bt.rt.cfg.Servers[0].Host)
		if kind != cluster.Moved && kind != cluster.Ask {
			localReply(bt, rep)
			return
		}
		cs.keeper.Redirects[kind].Add(1)
		var srv *pools.Server
		if kind == cluster.Moved {
			srv = cs.keeper.Node(addr)
			cs.patch(slot, addr, srv)
			cs.topo.Refresh()
			bt.rt = cl.p.routing().active() // the batch's later commands go there too
		}
		switch {
		case kind == cluster.Ask:
			r.reject(cl, bt, errSessionMigrating)
			return
		case !fresh || redirects >= maxRedirects:
			if fresh {
				cs.keeper.RetriesExhausted.Add(1)
			}
			r.reject(cl, bt, errSessionMoved)
			return
		}
		// The session was made for this command: it moves. A node in
		// MULTI has flagged the transaction: its connection is closed.
		if s.multi {
			s.conn.Close()
		} else {
			s.conn.Release()
		}
		s.conn, s.srv, s.sentMulti = nil, nil, false
		s.queued, s.nqueued = owed.frames, owed.n
		if !r.chooseServer(cl, bt, srv) {
			return
		}
	}
}

// followBlocking answers a blocking command's reply, rep, after
// following the MOVED or ASK it may be to the node named, on a session
// connection there of its own (ASK glued behind ASKING), and so on, up to
// maxRedirects.
func (r *redisProto) followBlocking(cl *client, bt *batch, frame, rep []byte) {
	cs := cl.p.cluster
	for redirects := 0; ; redirects++ {
		kind, slot, addr := cluster.Classify(rep, bt.rt.cfg.Servers[0].Host)
		if kind != cluster.Moved && kind != cluster.Ask {
			localReply(bt, rep)
			return
		}
		cs.keeper.Redirects[kind].Add(1)
		srv := cs.keeper.Node(addr)
		if kind == cluster.Moved {
			cs.patch(slot, addr, srv)
			cs.topo.Refresh()
			bt.rt = cl.p.routing().active()
		}
		if redirects >= maxRedirects {
			cs.keeper.RetriesExhausted.Add(1)
			errorReply(bt, errSessionMoved)
			return
		}
		conn, err := srv.Session(cl.resp3)
		if err != nil {
			errorReply(bt, "ERR "+err.Error())
			return
		}
		got, hup, err := cl.waitReply(conn, frame, kind == cluster.Ask)
		switch {
		case hup:
			conn.Close()
			cl.endSession(false)
			cl.leaving = true
			return
		case err != nil:
			conn.Close()
			errorReply(bt, "ERR "+err.Error())
			return
		}
		rep = append(rep[:0:0], got...)
		conn.Release()
	}
}
