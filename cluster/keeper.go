package cluster

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/pools"
)

// Pool is what a Keeper needs of the pool whose cluster it keeps.
type Pool interface {
	// NewServer makes the server of a node, from its line, with the
	// settings of cfg (the pool's, or a reload's). It is called with the
	// Keeper's lock held: it must not call the Keeper.
	NewServer(cfg *config.Pool, line config.Server) *pools.Server
	// Route makes sm the pool's routing, unless the pool routes by the
	// same already (ServerMap.Same). It is called from the Topology's
	// goroutine, without the Keeper's lock held.
	Route(sm ServerMap)
	// Retire closes a server that left the slot map once what it was
	// asked is answered. It is called without the Keeper's lock held.
	Retire(s *pools.Server)
}

// Keeper keeps a cluster pool's nodes: a server per node the pool knows
// (from the map, a redirect or the seeds), made on first use and closed
// once it has been out of the map and unused for a while, and the
// Topology that fetches the slot map over them. Each map taken goes to
// the pool (Pool.Route) with the servers of its nodes. It holds the
// counters of what the pool's requests cost in redirects and retries.
// Its methods may be called from any goroutine.
//
// Lock order: mu is taken after the pool's locks (a reload calls
// SetConfig under its own); Pool.NewServer is called with it held,
// Pool.Route and Pool.Retire without.
type Keeper struct {
	pool Pool
	log  *slog.Logger
	topo *Topology

	mu    sync.Mutex
	cfg   *config.Pool         // the settings new nodes are made with
	nodes map[string]*keptNode // by host:port

	// Counters, for stats: redirects followed by Classify kind, calls
	// sent again after their connection failed before they were
	// written, and calls that ran out of retries or redirects.
	Redirects        [Down + 1]atomic.Int64
	UnsentRetries    atomic.Int64
	RetriesExhausted atomic.Int64
	// ReplicaFallbacks counts the reads a replica did not serve, sent
	// to the primary.
	ReplicaFallbacks atomic.Int64
}

// keptNode is one node the pool knows: from the map, a redirect or the
// seeds.
type keptNode struct {
	srv *pools.Server
	// used is when the node was last in a map taken or asked for; a node
	// out of the map and unused for nodeIdle is closed.
	used time.Time
}

// nodeIdle is how long a node that left the slot map is kept.
const nodeIdle = time.Minute

// Frames a refresh sends.
var (
	clusterInfoFrame  = resp.AppendCommand(nil, []byte("CLUSTER"), []byte("INFO"))
	clusterSlotsFrame = resp.AppendCommand(nil, []byte("CLUSTER"), []byte("SLOTS"))
)

// NewKeeper returns the Keeper of the cluster of pool cfg, whose seeds
// are cfg's server lines; it does no I/O: the pool runs its Topology.
func NewKeeper(pool Pool, cfg *config.Pool, log *slog.Logger) *Keeper {
	k := &Keeper{pool: pool, log: log, cfg: cfg, nodes: map[string]*keptNode{}}
	k.topo = NewTopology(seedAddrs(cfg), k.fetch, k.apply, Options{}, log)
	return k
}

// Topology returns the Topology that keeps the Keeper's map fresh: the
// pool runs it, and asks it for a refresh.
func (k *Keeper) Topology() *Topology { return k.topo }

// seedAddrs are the host:port of a cluster pool's server lines.
func seedAddrs(cfg *config.Pool) []string {
	seeds := make([]string, len(cfg.Servers))
	for i, s := range cfg.Servers {
		seeds[i] = s.Addr
	}
	return seeds
}

// Node returns the server of the node at addr, made on first use.
func (k *Keeper) Node(addr string) *pools.Server {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.nodeLocked(addr, time.Now())
}

func (k *Keeper) nodeLocked(addr string, now time.Time) *pools.Server {
	if n := k.nodes[addr]; n != nil {
		n.used = now
		return n.srv
	}
	host, port, _ := net.SplitHostPort(addr)
	pn, _ := strconv.Atoi(port)
	line := config.Server{Network: "tcp", Addr: addr, Host: host, Port: pn, Weight: 1, Ident: addr}
	srv := k.pool.NewServer(k.cfg, line)
	k.nodes[addr] = &keptNode{srv: srv, used: now}
	return srv
}

// fetch asks a node for CLUSTER INFO and CLUSTER SLOTS on its shared
// connection (a Fetch).
func (k *Keeper) fetch(ctx context.Context, addr string) (info, slots []byte, err error) {
	srv := k.Node(addr)
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

// apply hands a view to the pool with the servers of its nodes, and
// retires the nodes out of the map and unused for nodeIdle (a
// Topology's apply).
func (k *Keeper) apply(v *View) {
	now := time.Now()
	k.mu.Lock()
	primaries := make([]*pools.Server, len(v.Map.Shards))
	replicas := make([][]*pools.Server, len(v.Map.Shards))
	for i, s := range v.Map.Shards {
		primaries[i] = k.nodeLocked(s.Primary.Addr, now)
		for _, r := range s.Replicas {
			replicas[i] = append(replicas[i], k.nodeLocked(r.Addr, now))
		}
	}
	var gone []*pools.Server
	for addr, n := range k.nodes {
		if now.Sub(n.used) > nodeIdle {
			gone = append(gone, n.srv)
			delete(k.nodes, addr)
		}
	}
	k.mu.Unlock()
	k.pool.Route(ServerMap{Map: v.Map, Primaries: primaries, Replicas: replicas})
	for _, s := range gone {
		k.log.Info("cluster: node left the slot map", "node", s.Name())
		k.pool.Retire(s)
	}
}

// SetConfig takes a reload's settings: the seeds, and the settings of
// nodes made from now on (the same as the others', or the pool would be
// new).
func (k *Keeper) SetConfig(cfg *config.Pool) {
	k.mu.Lock()
	k.cfg = cfg
	k.mu.Unlock()
	k.topo.SetSeeds(seedAddrs(cfg))
}

// Nodes counts the nodes the Keeper knows: primaries, replicas, and
// those met in redirects.
func (k *Keeper) Nodes() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.nodes)
}

// Close closes every node's server (the pool closes). The Topology stops
// when the pool's Run ends.
func (k *Keeper) Close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, n := range k.nodes {
		n.srv.Close()
	}
}

// Replies to a request whose slot has no node in the pool's map: Redis
// Cluster's own, and the proxy's before it has a map at all (no seed
// answered yet).
const (
	slotNotServed = "CLUSTERDOWN Hash slot not served"
	noSlotMapYet  = "CLUSTERDOWN Hash slot not served: the proxy has no slot map yet (no cluster node answered)"
)

// NoSlot is the error for a request whose slot no node serves by the
// pool's map (mapped: the pool has one), and asks for a refresh: the map
// may be missing, or older than the cluster's.
func (k *Keeper) NoSlot(mapped bool) string {
	k.topo.Refresh()
	if !mapped {
		return noSlotMapYet
	}
	return slotNotServed
}
