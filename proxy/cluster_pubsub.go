package proxy

import (
	"bytes"
	"errors"
	"time"

	"github.com/shardproxy/shardproxy/cluster"
	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/commands"
	"github.com/shardproxy/shardproxy/pools"
)

// Pub/sub in a cluster pool (redis_cluster). A cluster sends every
// PUBLISH to every node, so a channel, and a pattern, is subscribed on
// one node, its name's slot's owner (subscriber.servers): each message
// comes once. A shard channel (SSUBSCRIBE) lives on its slot's owner, as
// Redis wants, and its messages (SPUBLISH) stay in its shard. A node
// whose map is newer than the pool's refuses a shard subscription with
// MOVED: the proxy follows it (followSubscribe).
//
// When a shard channel's slot moves away, Redis 7 drops its subscribers
// there and tells each with a sunsubscribe push. The proxy does not pass
// it on: it subscribes the channel again on the slot's new owner
// (resubscribe), and the client, still subscribed as far as it knows,
// gets the channel's messages from there, after those published while
// the slot moved, which no subscriber of the channel gets. If the
// channel's slot has no other owner within resubscribeWait, or the new
// owner refuses, the client's subscriptions are lost and it is closed, as
// when a subscription's connection fails: it connects and subscribes
// again.

// resubscribeWait bounds the wait for the pool's map to name a shard
// channel's new owner after its old one dropped it.
const resubscribeWait = 10 * time.Second

// shardMove is a shard channel dropped by its node (from), being
// subscribed again on to (nil until known).
type shardMove struct {
	from, to *pools.Server
	drop     bool // the client left the channel meanwhile: unsubscribe it when made
}

// followSubscribe follows the MOVED a node refused a shard subscription
// command with (the pool's map was stale): the slot is patched and the
// command runs again, on the new owner, up to maxRedirects times.
func (r *redisProto) followSubscribe(cl *client, sb *subscriber, bt *batch, cmd *commands.Command, targets [][]byte, out []byte, err error) ([]byte, error) {
	cs := cl.p.cluster
	for range maxRedirects {
		var ref refusal
		if !errors.As(err, &ref) {
			break
		}
		kind, slot, addr := cluster.Classify(ref.rep, bt.rt.cfg.Servers[0].Host)
		if kind != cluster.Moved {
			break
		}
		cs.keeper.Redirects[kind].Add(1)
		srv := cs.keeper.Node(addr)
		cs.patch(slot, addr, srv)
		cs.topo.Refresh()
		bt.rt = cl.p.routing().active()
		out, err = r.subscribe(cl, sb, bt.rt, cmd, targets)
	}
	return out, err
}

// Shard confirmations' first bytes, RESP2 and RESP3.
var (
	sunsubscribePrefixes = [][]byte{[]byte("*3\r\n$12\r\nsunsubscribe\r\n"), []byte(">3\r\n$12\r\nsunsubscribe\r\n")}
	ssubscribePrefixes   = [][]byte{[]byte("*3\r\n$10\r\nssubscribe\r\n"), []byte(">3\r\n$10\r\nssubscribe\r\n")}
)

// shardChannel returns the channel of a shard confirmation (rep starts
// with one of prefixes), or false.
func shardChannel(rep []byte, prefixes [][]byte) (string, bool) {
	for _, p := range prefixes {
		if bytes.HasPrefix(rep, p) {
			ch, _, err := resp.ReadBulkString(rep[len(p):])
			return string(ch), err == nil
		}
	}
	return "", false
}

// shardMoved takes, on srv's subscription connection, what belongs to
// shard channels on the move rather than to the client's goroutine: a
// sunsubscribe the client did not ask for (the node dropped the channel:
// its slot moved), which starts its resubscription; the confirmation of
// a resubscription, or of its undoing; and an error while a
// resubscription waits on srv, which ends the client. It reports whether
// it took rep.
func (sb *subscriber) shardMoved(srv *pools.Server, conn *pools.SessionConn, rep []byte) bool {
	if sb.cl.p.cluster == nil {
		return false
	}
	if resp.IsError(rep) {
		sb.mu.Lock()
		ours := false
		for _, m := range sb.moving {
			ours = ours || m.to == srv && !sb.holding
		}
		sb.mu.Unlock()
		if ours {
			sb.cl.p.log.Info("cluster: a shard channel's new owner refused it", "node", srv.Name(), "reply", resp.Clip(rep))
			sb.fail()
		}
		return ours
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if ch, ok := shardChannel(rep, sunsubscribePrefixes); ok {
		m := sb.moving[ch]
		switch {
		case m != nil && m.drop && m.to == srv: // the undoing of a resubscription
			delete(sb.moving, ch)
			return true
		case sb.leaving[ch] || sb.shards[ch] != srv || sb.closing || sb.failed:
			return false
		case m == nil:
			sb.moving[ch] = &shardMove{from: srv}
			sb.wg.Add(1)
			go sb.resubscribe(ch, srv)
		}
		return true
	}
	if ch, ok := shardChannel(rep, ssubscribePrefixes); ok {
		m := sb.moving[ch]
		if m == nil || m.to != srv {
			return false
		}
		if sb.shards[ch] == nil { // the client left it meanwhile
			m.drop = true
			if conn.Write(resp.AppendCommand(nil, []byte("SUNSUBSCRIBE"), []byte(ch))) != nil {
				delete(sb.moving, ch)
			}
			return true
		}
		sb.shards[ch] = srv
		delete(sb.moving, ch)
		return true
	}
	return false
}

// resubscribe subscribes shard channel ch again on its slot's owner once
// the pool's map names one other than from, which dropped it.
func (sb *subscriber) resubscribe(ch string, from *pools.Server) {
	defer sb.wg.Done()
	p := sb.cl.p
	deadline := time.Now().Add(resubscribeWait)
	var to *pools.Server
	for to == nil {
		p.cluster.topo.Refresh()
		rt := p.routing()
		if i := rt.locate([]byte(ch)); i >= 0 && rt.ring[i] != from {
			to = rt.ring[i]
			break
		}
		if time.Now().After(deadline) {
			p.log.Info("cluster: no new owner for a shard channel", "channel", ch)
			sb.fail()
			return
		}
		select {
		case <-sb.done:
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	conn, err := sb.connTo(to)
	if err == nil {
		sb.mu.Lock()
		if m := sb.moving[ch]; m != nil {
			m.to = to
		}
		sb.mu.Unlock()
		err = conn.Write(resp.AppendCommand(nil, []byte("SSUBSCRIBE"), []byte(ch)))
	}
	if err != nil {
		p.log.Info("cluster: a shard channel cannot be subscribed on its new owner", "channel", ch, "node", to.Name(), "err", err)
		sb.fail()
	}
}

// connTo returns the subscriber's connection to srv, made (with its
// reader) when there is none.
func (sb *subscriber) connTo(srv *pools.Server) (*pools.SessionConn, error) {
	sb.mu.Lock()
	conn := sb.conns[srv]
	sb.mu.Unlock()
	if conn != nil {
		return conn, nil
	}
	conn, err := srv.Session(sb.cl.resp3)
	if err != nil {
		return nil, err
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	switch {
	case sb.closing:
		conn.Close()
		return nil, errSubsLost
	case sb.conns[srv] != nil: // made meanwhile by the client's goroutine
		conn.Close()
		return sb.conns[srv], nil
	}
	sb.conns[srv] = conn
	sb.wg.Add(1)
	go sb.read(srv, conn)
	return conn, nil
}

// clusterNumsub answers PUBSUB NUMSUB in a cluster pool: each channel's
// subscribers on every primary, summed. A node counts only its own, and
// a channel's subscriptions may be on any node: the proxy's on the
// owner of the channel's slot when they were made, other clients'
// wherever they connected.
func (r *redisProto) clusterNumsub(cl *client, bt *batch, args [][]byte) {
	counts := make([]int64, len(args)-2)
	for _, srv := range bt.rt.servers {
		v, err := askServer(cl, srv, args)
		if err != nil {
			errorReply(bt, "ERR "+err.Error())
			return
		}
		if len(v.Elems) != 2*len(counts) {
			errorReply(bt, "ERR unexpected reply from server: "+resp.Clip(v.Raw))
			return
		}
		for i := range counts {
			counts[i] += v.Elems[2*i+1].Int
		}
	}
	dst := resp.AppendArray(nil, 2*len(counts))
	for i, ch := range args[2:] {
		dst = resp.AppendInt(resp.AppendBulk(dst, ch), counts[i])
	}
	localReply(bt, dst)
}
