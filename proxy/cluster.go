package proxy

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardproxy/shardproxy/cluster"
	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/hashring"
	"github.com/shardproxy/shardproxy/pools"
)

// A cluster pool (redis_cluster: true) fronts a Redis Cluster: its
// servers are seed nodes, and the cluster's slot map, which a
// cluster.Topology keeps fresh, places keys (routing.slots). Redirects
// are the proxy's business: after a batch's calls are answered,
// followCluster sends again, in request order, each one the cluster did
// not run (MOVED, ASK glued to ASKING, TRYAGAIN, CLUSTERDOWN, a
// connection that failed before the request was written), so that no
// MOVED or ASK ever reaches a client.

// clusterState is a cluster pool's nodes and topology.
//
// Lock order: mu is taken alone; apply takes the pool's ringMu after
// releasing it.
type clusterState struct {
	p    *pool
	topo *cluster.Topology

	mu    sync.Mutex
	cfg   *config.Pool // the settings new nodes are made with
	roots *x509.CertPool
	nodes map[string]*clusterNode // by host:port

	// Counters, for stats: redirects by cluster.Classify kind, calls
	// sent again after their connection failed before they were
	// written, and calls that ran out of retries or redirects.
	redirects        [cluster.Down + 1]atomic.Int64
	unsentRetries    atomic.Int64
	retriesExhausted atomic.Int64
	// replicaFallbacks counts the reads a replica did not serve, sent
	// to the primary (cluster_replicas.go).
	replicaFallbacks atomic.Int64
}

// clusterNode is one node the pool knows: from the map, a redirect or
// the seeds.
type clusterNode struct {
	srv *pools.Server
	// used is when the node was last in a map taken or asked for; a node
	// out of the map and unused for nodeIdle is closed.
	used time.Time
}

// nodeIdle is how long a node that left the slot map is kept.
const nodeIdle = time.Minute

// Frames a redirect handling and a refresh send.
var (
	askingFrame       = resp.AppendCommand(nil, []byte("ASKING"))
	clusterInfoFrame  = resp.AppendCommand(nil, []byte("CLUSTER"), []byte("INFO"))
	clusterSlotsFrame = resp.AppendCommand(nil, []byte("CLUSTER"), []byte("SLOTS"))
)

// kindAsking is the Call.Kind of a request sent glued behind ASKING: its
// reply is two, ASKING's then its own (see redisServers.framer).
const kindAsking uint8 = 1

// newClusterState makes the state of cluster pool p.
func newClusterState(p *pool, cfg *config.Pool, roots *x509.CertPool) *clusterState {
	cs := &clusterState{p: p, cfg: cfg, roots: roots, nodes: map[string]*clusterNode{}}
	cs.topo = cluster.NewTopology(seedAddrs(cfg), cs.fetch, cs.apply, cluster.Options{}, p.log)
	return cs
}

// seedAddrs are the host:port of a cluster pool's server lines.
func seedAddrs(cfg *config.Pool) []string {
	seeds := make([]string, len(cfg.Servers))
	for i, s := range cfg.Servers {
		seeds[i] = s.Addr
	}
	return seeds
}

// node returns the server of the node at addr, made on first use.
func (cs *clusterState) node(addr string) *pools.Server {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.nodeLocked(addr, time.Now())
}

func (cs *clusterState) nodeLocked(addr string, now time.Time) *pools.Server {
	if n := cs.nodes[addr]; n != nil {
		n.used = now
		return n.srv
	}
	host, port, _ := net.SplitHostPort(addr)
	pn, _ := strconv.Atoi(port)
	line := config.Server{Network: "tcp", Addr: addr, Host: host, Port: pn, Weight: 1, Ident: addr}
	srv := cs.p.newServer(cs.cfg, line, cs.roots)
	cs.nodes[addr] = &clusterNode{srv: srv, used: now}
	return srv
}

// fetch asks a node for CLUSTER INFO and CLUSTER SLOTS on its shared
// connection (a cluster.Fetch).
func (cs *clusterState) fetch(ctx context.Context, addr string) (info, slots []byte, err error) {
	srv := cs.node(addr)
	done := make(callSignal, 2)
	calls := [2]*pools.Call{{Frame: clusterInfoFrame, Done: done}, {Frame: clusterSlotsFrame, Done: done}}
	conn := srv.Conn(0)
	for _, c := range calls {
		conn.Enqueue(c)
	}
	conn.Flush()
	for range calls {
		select {
		case <-done:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
	for _, c := range calls {
		if c.Err != nil {
			return nil, nil, c.Err
		}
	}
	return calls[0].Reply, calls[1].Reply, nil
}

// callSignal is told when a call is done.
type callSignal chan struct{}

func (s callSignal) CallDone(*pools.Call) { s <- struct{}{} }

// apply makes a view the pool's routing (a cluster.Topology's apply).
func (cs *clusterState) apply(v *cluster.View) {
	now := time.Now()
	cs.mu.Lock()
	primaries := make([]*pools.Server, len(v.Map.Shards))
	replicas := make([][]*pools.Server, len(v.Map.Shards))
	for i, s := range v.Map.Shards {
		primaries[i] = cs.nodeLocked(s.Primary.Addr, now)
		for _, r := range s.Replicas {
			replicas[i] = append(replicas[i], cs.nodeLocked(r.Addr, now))
		}
	}
	var gone []*pools.Server
	for addr, n := range cs.nodes {
		if now.Sub(n.used) > nodeIdle {
			gone = append(gone, n.srv)
			delete(cs.nodes, addr)
		}
	}
	cs.mu.Unlock()
	p := cs.p
	p.ringMu.Lock()
	cur := p.routing()
	if cur.clusterMap == nil || cur.clusterMap.Slots != v.Map.Slots || !sameServers(cur.ring, primaries) ||
		!slices.EqualFunc(cur.clusterReplicas, replicas, sameServers) {
		p.rt.Store(newClusterRouting(cur.cfg, v.Map, primaries, replicas).migrating(cur))
	}
	p.ringMu.Unlock()
	for _, s := range gone {
		p.log.Info("cluster: node left the slot map", "node", s.Name())
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.drainServer(s)
		}()
	}
}

func sameServers(a, b []*pools.Server) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// setConfig takes a reload's settings: the seeds, and the settings of
// nodes made from now on (the same as the others', or the pool would be
// new).
func (cs *clusterState) setConfig(cfg *config.Pool) {
	cs.mu.Lock()
	cs.cfg = cfg
	cs.mu.Unlock()
	cs.topo.SetSeeds(seedAddrs(cfg))
}

// snapshot reads the cluster's state and counters.
func (cs *clusterState) snapshot(rt *routing) *ClusterSnapshot {
	s := &ClusterSnapshot{
		MapAge:           -1,
		Refreshes:        cs.topo.Refreshes.Load(),
		RefreshFailures:  cs.topo.Failures.Load(),
		StaleViews:       cs.topo.Stale.Load(),
		Moved:            cs.redirects[cluster.Moved].Load(),
		Ask:              cs.redirects[cluster.Ask].Load(),
		TryAgain:         cs.redirects[cluster.TryAgain].Load(),
		ClusterDown:      cs.redirects[cluster.Down].Load(),
		UnsentRetries:    cs.unsentRetries.Load(),
		RetriesExhausted: cs.retriesExhausted.Load(),
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
	cs.mu.Lock()
	s.Nodes = len(cs.nodes)
	cs.mu.Unlock()
	return s
}

// closeNodes closes every node's server (the pool closes).
func (cs *clusterState) closeNodes() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, n := range cs.nodes {
		n.srv.Close()
	}
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
					cs.retriesExhausted.Add(1)
					c.Reply = resp.AppendError(c.Reply[:0], fmt.Sprintf(
						"TRYAGAIN the cluster redirected the request %d times (slot %d): its slot map is changing", maxRedirects, slot))
					continue
				}
				srv = cs.node(addr)
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
					cs.retriesExhausted.Add(1)
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
				cs.unsentRetries.Add(1)
			} else {
				cs.redirects[kind].Add(1)
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
	if cur.clusterMap == nil {
		return
	}
	if i := cur.slots[slot]; i != cluster.Uncovered && cur.ring[i] == srv {
		return
	}
	m := &cluster.Map{Shards: cur.clusterMap.Shards, Slots: cur.clusterMap.Slots}
	ring, replicas := cur.ring, cur.clusterReplicas
	i := slices.Index(ring, srv)
	if i < 0 {
		if len(ring) >= int(cluster.Uncovered) {
			return
		}
		i = len(ring)
		m.Shards = append(slices.Clip(m.Shards), cluster.Shard{Primary: cluster.Node{Addr: addr}})
		ring = append(slices.Clip(ring), srv)
		replicas = append(slices.Clip(replicas), nil)
	}
	m.Slots[slot] = uint16(i)
	p.rt.Store(newClusterRouting(cur.cfg, m, ring, replicas).migrating(cur))
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
	cmd := lookup(req.Args[0])
	if cmd == nil {
		return nil
	}
	keys, err := cmd.keys(nil, req.Args)
	if err != keysOK || len(keys) == 0 {
		return nil
	}
	if i := rt.locate(keys[0]); i >= 0 {
		return rt.ring[i]
	}
	return nil
}

// Replies to a request whose slot has no node in the pool's map: Redis
// Cluster's own, and the proxy's before it has a map at all (no seed
// answered yet).
const (
	slotNotServed = "CLUSTERDOWN Hash slot not served"
	noSlotMapYet  = "CLUSTERDOWN Hash slot not served: the proxy has no slot map yet (no cluster node answered)"
)

// noSlot is the error for a request whose slot no node serves by rt, and
// asks for a refresh: the map may be missing, or older than the
// cluster's.
func (cs *clusterState) noSlot(rt *routing) string {
	cs.topo.Refresh()
	if rt.clusterMap == nil {
		return noSlotMapYet
	}
	return slotNotServed
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
