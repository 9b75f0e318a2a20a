package proxy

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/shardproxy/shardproxy/cluster"
	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/commands"
	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/hashring"
	"github.com/shardproxy/shardproxy/pools"
	"github.com/shardproxy/shardproxy/stats"
)

// A cluster pool (redis_cluster: true) fronts a Redis Cluster: its
// servers are seed nodes, and the cluster's slot map, which a
// cluster.Keeper keeps fresh along with a server per node, places keys
// (routing.slots). Redirects are the proxy's business: after a batch's
// calls are answered, followCluster sends again, in request order, each
// one the cluster did not run (MOVED, ASK glued to ASKING, TRYAGAIN,
// CLUSTERDOWN, a connection that failed before the request was written),
// so that no MOVED or ASK ever reaches a client.

// clusterState is a cluster pool's cluster.Keeper and the pool's side of
// its seam (cluster.Pool): each map the Keeper takes, with the servers of
// its nodes, becomes the pool's routing (Route), as a MOVED's patch of
// one slot does (patch).
type clusterState struct {
	p      *pool
	roots  *x509.CertPool // the TLS roots of the pool's node connections
	keeper *cluster.Keeper
	// topo is the Keeper's Topology, which the pool runs (startPool).
	topo *cluster.Topology
}

// Frames of redirect handling.
var askingFrame = resp.AppendCommand(nil, []byte("ASKING"))

// kindAsking is the Call.Kind of a request sent glued behind ASKING: its
// reply is two, ASKING's then its own (see redisServers.framer).
const kindAsking uint8 = 1

// newClusterState makes the state of cluster pool p.
func newClusterState(p *pool, cfg *config.Pool, roots *x509.CertPool) *clusterState {
	cs := &clusterState{p: p, roots: roots}
	cs.keeper = cluster.NewKeeper(cs, cfg, p.log)
	cs.topo = cs.keeper.Topology()
	return cs
}

// NewServer makes the server of a cluster node (cluster.Pool).
func (cs *clusterState) NewServer(cfg *config.Pool, line config.Server) *pools.Server {
	return cs.p.newServer(cfg, line, cs.roots)
}

// Route makes sm the pool's routing, unless it routes by the same
// primaries and replicas already (cluster.Pool).
func (cs *clusterState) Route(sm cluster.ServerMap) {
	p := cs.p
	p.ringMu.Lock()
	cur := p.routing()
	if !clusterServerMap(cur).Same(sm) {
		p.rt.Store(newClusterRouting(cur.cfg, sm.Map, sm.Primaries, sm.Replicas).migrating(cur))
	}
	p.ringMu.Unlock()
}

// Retire closes a node that left the slot map once what it was asked is
// answered (cluster.Pool).
func (cs *clusterState) Retire(s *pools.Server) {
	p := cs.p
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.drainServer(s)
	}()
}

// clusterServerMap is the slot map and servers a cluster pool's routing
// routes by.
func clusterServerMap(rt *routing) cluster.ServerMap {
	return cluster.ServerMap{Map: rt.clusterMap, Primaries: rt.ring, Replicas: rt.clusterReplicas}
}

// snapshot reads the cluster's state and counters.
func (cs *clusterState) snapshot(rt *routing) *stats.Cluster {
	k := cs.keeper
	s := &stats.Cluster{
		MapAge:           -1,
		Refreshes:        cs.topo.Refreshes.Load(),
		RefreshFailures:  cs.topo.Failures.Load(),
		StaleViews:       cs.topo.Stale.Load(),
		Moved:            k.Redirects[cluster.Moved].Load(),
		Ask:              k.Redirects[cluster.Ask].Load(),
		TryAgain:         k.Redirects[cluster.TryAgain].Load(),
		ClusterDown:      k.Redirects[cluster.Down].Load(),
		UnsentRetries:    k.UnsentRetries.Load(),
		RetriesExhausted: k.RetriesExhausted.Load(),
		ReplicaFallbacks: k.ReplicaFallbacks.Load(),
	}
	v, err := cs.topo.Last()
	if err != nil {
		s.LastRefreshError = err.Error()
	}
	if v != nil {
		s.Epoch, s.MapFrom, s.MapAge = v.Epoch, v.From, time.Since(v.Taken)
	}
	if rt.clusterMap != nil {
		s.SlotsCovered = hashring.ClusterSlots - rt.clusterMap.Uncovered()
	}
	s.Nodes = k.Nodes()
	return s
}

// noSlots is the slot table of a cluster pool before its first map.
var noSlots = func() *[hashring.ClusterSlots]uint16 {
	var s [hashring.ClusterSlots]uint16
	for i := range s {
		s[i] = cluster.Uncovered
	}
	return &s
}()

// newClusterRouting is the routing of a cluster pool by map m (nil before
// the first): ring[i] is the primary of m.Shards[i], and servers the
// same; replicas[i] are its replicas.
func newClusterRouting(cfg *config.Pool, m *cluster.Map, primaries []*pools.Server, replicas [][]*pools.Server) *routing {
	rt := &routing{cfg: cfg, servers: primaries, lim: newLimits(cfg), clusterMap: m, clusterReplicas: replicas,
		replicaReads: cfg.Sentinel.ReplicaReads}
	rt.ring = primaries
	rt.slots = noSlots
	if m != nil {
		rt.slots = &m.Slots
	}
	return rt
}

// clusterRetry is how long to wait before sending again a request the
// cluster could not serve now, by kind.
var clusterRetry = [...]time.Duration{cluster.TryAgain: 25 * time.Millisecond, cluster.Down: 100 * time.Millisecond}

// unsentRetry is the wait before a request whose connection failed
// before it was written is sent again.
const unsentRetry = 100 * time.Millisecond

// maxRedirects bounds the MOVED and ASK a batch follows.
const maxRedirects = 16

// resend is one call of a batch to send again.
type resend struct {
	call   int
	srv    *pools.Server
	asking bool
}

// followCluster sends again, until every call has a reply the client may
// see, the calls of bt that the cluster did not run: those answered
// MOVED or ASK at once to the node named (ASK glued behind ASKING, on
// the client's connection there, so that no other request comes
// between them), those answered TRYAGAIN or CLUSTERDOWN, or whose
// connection failed before they were written, after a pause, to their
// slot's owner by the current map, within cluster_retry_timeout. Calls
// go again in request order, and the client's replies are written only
// after, so that they keep their order. A call written to a node whose
// connection then failed is not sent again: it may have run there.
func (cl *client) followCluster(bt *batch) {
	if bt.rt.slots == nil {
		return // routed by migrate_from's placement, before its start_at
	}
	cs := cl.p.cluster
	var deadline time.Time
	var redirects int
	// again are the calls sent again in this round; after the first
	// round, only those of the last (sent) are looked at: the others
	// have their replies, and looking again would count them again.
	var again, sent []resend
	for round := 0; ; round++ {
		rt := cl.p.routing()
		sent, again = again, sent[:0]
		var wait time.Duration
		n := bt.ncalls
		if round > 0 {
			n = len(sent)
		}
		for j := range n {
			i := j
			if round > 0 {
				i = sent[j].call
			}
			c := bt.calls[i]
			if c.Kind == kindAsking {
				dropAskingReply(c)
			}
			kind, slot, addr := cs.classify(c, rt.cfg.Servers[0].Host)
			var srv *pools.Server
			switch kind {
			case cluster.Served:
				continue
			case cluster.Moved, cluster.Ask:
				if redirects >= maxRedirects {
					// Never a MOVED or ASK to the client: it would
					// go around the proxy.
					cs.keeper.RetriesExhausted.Add(1)
					c.Reply = resp.AppendError(c.Reply[:0], fmt.Sprintf(
						"TRYAGAIN the cluster redirected the request %d times (slot %d): its slot map is changing", maxRedirects, slot))
					continue
				}
				srv = cs.keeper.Node(addr)
				if kind == cluster.Moved {
					cs.patch(slot, addr, srv)
					cs.topo.Refresh()
				}
			default:
				if deadline.IsZero() {
					deadline = time.Now().Add(rt.cfg.ClusterRetryTimeout)
				}
				pause := unsentRetry
				if kind != unsent {
					pause = clusterRetry[kind]
				}
				if time.Now().Add(pause).After(deadline) {
					cs.keeper.RetriesExhausted.Add(1)
					continue
				}
				if kind != cluster.TryAgain {
					cs.topo.Refresh()
				}
				if srv = rt.ownerOf(c); srv == nil {
					continue
				}
				wait = max(wait, pause)
			}
			if kind == unsent {
				cs.keeper.UnsentRetries.Add(1)
			} else {
				cs.keeper.Redirects[kind].Add(1)
			}
			again = append(again, resend{call: i, srv: srv, asking: kind == cluster.Ask})
		}
		if len(again) == 0 {
			return
		}
		redirects++
		if wait > 0 {
			time.Sleep(wait)
		}
		clear(bt.conns)
		bt.conns = bt.conns[:0]
		now := time.Now()
		for _, r := range again {
			c := bt.calls[r.call]
			parts := requestParts(c)
			c.Reset(64 << 10)
			if r.asking {
				c.Parts, c.Kind = append([][]byte{askingFrame}, parts...), kindAsking
			} else if len(parts) == 1 {
				c.Frame = parts[0]
			} else {
				c.Parts = parts
			}
			c.Done, c.Sent, c.Queued = cl, now, now
			conn := cl.conn(r.srv)
			cl.pending.Add(1)
			conn.Enqueue(c)
			bt.addConn(conn)
		}
		bt.flush()
		cl.await()
	}
}

// unsent is followCluster's kind for a call whose connection failed
// before it was written.
const unsent = -1

// classify says what became of a call in a cluster: served (its reply or
// error goes to the client), or one of cluster.Classify's kinds, or
// unsent; addr is where MOVED and ASK send it (hostOf is the host of a
// node that names only its port: the first seed's). A call that failed after
// it was written gets an error that says it may have run, and asks for a
// refresh: its node may be gone.
func (cs *clusterState) classify(c *pools.Call, hostOf string) (kind, slot int, addr string) {
	if c.Err != nil {
		switch {
		case errors.Is(c.Err, pools.ErrClosed):
		case errors.Is(c.Err, pools.ErrNotSent):
			return unsent, 0, ""
		case errors.Is(c.Err, pools.ErrUnavailable) || errors.Is(c.Err, pools.ErrTimeout):
			cs.topo.Refresh()
			c.Err = fmt.Errorf("%w (the request was sent and may have run)", c.Err)
		}
		return cluster.Served, 0, ""
	}
	return cluster.Classify(c.Reply, hostOf)
}

// patch makes srv (at addr) the owner of slot in the pool's routing, as
// a MOVED says, until the next refresh brings the whole map: the
// requests of later batches go there at once.
func (cs *clusterState) patch(slot int, addr string, srv *pools.Server) {
	p := cs.p
	p.ringMu.Lock()
	defer p.ringMu.Unlock()
	cur := p.routing()
	if sm, ok := clusterServerMap(cur).Patch(slot, addr, srv); ok {
		p.rt.Store(newClusterRouting(cur.cfg, sm.Map, sm.Primaries, sm.Replicas).migrating(cur))
	}
}

// dropAskingReply takes ASKING's reply off the front of a glued call's.
func dropAskingReply(c *pools.Call) {
	c.Kind = 0
	if c.Err != nil {
		return
	}
	if n, err := resp.ReadReply(c.Reply); err == nil && n > 0 && n < len(c.Reply) {
		c.Reply = c.Reply[n:]
	}
}

// requestParts is a call's request as it was before any ASKING.
func requestParts(c *pools.Call) [][]byte {
	switch {
	case c.Parts == nil:
		return [][]byte{c.Frame}
	case len(c.Parts) > 1 && &c.Parts[0][0] == &askingFrame[0]:
		return c.Parts[1:]
	}
	return c.Parts
}

// ownerOf is the primary of the slot of a call's keys by the map now, or
// nil when the call has no key or its slot no owner.
func (rt *routing) ownerOf(c *pools.Call) *pools.Server {
	frame := c.Frame
	if c.Parts != nil {
		parts := requestParts(c)
		frame = nil
		for _, p := range parts {
			frame = append(frame, p...)
		}
	}
	var req resp.Request
	if n, err := resp.ReadRequest(frame, &req, resp.Limits{MaxBulk: len(frame)}); n == 0 || err != nil || len(req.Args) == 0 {
		return nil
	}
	cmd := commands.Lookup(req.Args[0])
	if cmd == nil {
		return nil
	}
	keys, err := cmd.Keys(nil, req.Args)
	if err != commands.KeysOK || len(keys) == 0 {
		return nil
	}
	if i := rt.locate(keys[0]); i >= 0 {
		return rt.ring[i]
	}
	return nil
}

// noSlot is the error for a request whose slot no node serves by rt, and
// asks for a refresh (cluster.Keeper.NoSlot).
func (cs *clusterState) noSlot(rt *routing) string {
	return cs.keeper.NoSlot(rt.clusterMap != nil)
}

// crossSlot is Redis Cluster's reply to a request whose keys are in more
// than one slot.
const crossSlot = "CROSSSLOT Keys in request don't hash to the same slot"

// sameSlot reports whether every key is in the slot of the first.
func sameSlot(keys [][]byte) bool {
	if len(keys) < 2 {
		return true
	}
	s := hashring.ClusterSlot(keys[0])
	for _, k := range keys[1:] {
		if hashring.ClusterSlot(k) != s {
			return false
		}
	}
	return true
}
