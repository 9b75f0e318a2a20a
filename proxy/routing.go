package proxy

import (
	"fmt"
	"slices"
	"time"

	"github.com/shardproxy/shardproxy/cluster"
	"github.com/shardproxy/shardproxy/codec/memcache"
	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/commands"
	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/hashring"
	"github.com/shardproxy/shardproxy/migration"
	"github.com/shardproxy/shardproxy/pools"
)

// routing is a pool's routing state at one moment: its configuration, its
// servers, the placement of keys over the servers in the ring, and the
// limits its clients are held to. It is immutable: ejection (and reload,
// resharding and a server's new address) build a new value from the
// current one and swap it in whole (pool.swapRouting). A client loads it
// once per batch. It is the one place that chooses a key's server: its
// owner now (locate), its owner before a migration (Owners, for package
// migration) and, for a read, a replica (readServer); each placement is
// asked through one function, placed.locate.
type routing struct {
	cfg *config.Pool
	// servers is every server of the pool, in file order, then those of
	// migrate_from that are not in servers (see serverLines).
	servers []*pools.Server
	// placed places keys over the servers in the ring (place, ring).
	placed
	lim limits
	// A migration (migrate_from): from places keys where the data is
	// now, over its old owners (every one, ejected or not); mig is its
	// state, shared by the routing values rebuilt from this one. Both
	// empty without a migration.
	from placed
	mig  *migration.State
	// A migration with a start time (migrate_from's start_at): until
	// it, batches are routed by before, the routing of the old placement
	// alone, without a migration (see active). nil without start_at.
	before *routing
	// replicaReads sends read-only commands to replicas (replica_reads;
	// never during a migration).
	replicaReads bool
	// A cluster pool's slot map (cluster.go), nil before the first and
	// in other pools; clusterReplicas[i] are the replicas of ring[i].
	clusterMap      *cluster.Map
	clusterReplicas [][]*pools.Server
}

// limits are the bounds a pool's clients are held to, from its
// configuration.
type limits struct {
	maxRequest   int           // bytes of one request
	idleTimeout  time.Duration // close a client idle this long; 0 = never
	timeout      time.Duration // a server's reply timeout; 0 = none
	parkAfter    time.Duration // park a client idle this long; 0 = never
	writeTimeout time.Duration // cut off a client not reading this long
	outputLimit  int           // bytes of unread replies; 0 = unlimited
	resp         resp.Limits
	memcache     memcache.Limits
}

// serverLines are the lines of every server a pool talks to: its servers,
// then those of migrate_from not among them (by identity).
func serverLines(cfg *config.Pool) []config.Server {
	if cfg.MigrateFrom == nil {
		return cfg.Servers
	}
	lines := append([]config.Server(nil), cfg.Servers...)
	for _, s := range cfg.MigrateFrom.Servers {
		if !slices.ContainsFunc(cfg.Servers, func(n config.Server) bool { return n.Ident == s.Ident }) {
			lines = append(lines, s)
		}
	}
	return lines
}

// newRouting builds the routing of cfg over servers (one per line of
// serverLines(cfg)), leaving ejected servers out of the ring unless their
// keys fail fast.
func newRouting(cfg *config.Pool, servers []*pools.Server) (*routing, error) {
	rt := &routing{cfg: cfg, servers: servers, lim: newLimits(cfg),
		replicaReads: cfg.Sentinel.ReplicaReads && cfg.MigrateFrom == nil}
	hc := hashring.Config{Hash: cfg.Hash, HashTag: cfg.HashTag, Distribution: cfg.Distribution, Slots: cfg.Slots}
	for i, srv := range servers[:len(cfg.Servers)] {
		if srv.Ejected() && !rt.failFast() {
			continue
		}
		rt.ring = append(rt.ring, srv)
		hc.Servers = append(hc.Servers, hashring.Server{Name: cfg.Servers[i].Ident, Weight: cfg.Servers[i].Weight})
	}
	place, err := hashring.New(hc)
	if err != nil {
		return nil, fmt.Errorf("pool %q: %w", cfg.Name, err)
	}
	rt.place = place
	if cfg.MigrateFrom != nil {
		if err := rt.migrateFrom(serverLines(cfg)); err != nil {
			return nil, err
		}
	}
	return rt, nil
}

// migrateFrom builds the placement of migrate_from over the servers of
// lines (those of rt.servers).
func (rt *routing) migrateFrom(lines []config.Server) error {
	mf := rt.cfg.MigrateFrom
	hc := hashring.Config{Hash: mf.Hash, HashTag: mf.HashTag, Distribution: mf.Distribution, Slots: mf.Slots}
	for _, s := range mf.Servers {
		i := slices.IndexFunc(lines, func(l config.Server) bool { return l.Ident == s.Ident })
		rt.from.ring = append(rt.from.ring, rt.servers[i])
		hc.Servers = append(hc.Servers, hashring.Server{Name: s.Ident, Weight: s.Weight})
	}
	place, err := hashring.New(hc)
	if err != nil {
		return fmt.Errorf("pool %q: migrate_from: %w", rt.cfg.Name, err)
	}
	rt.from.place = place
	rt.mig = migration.New(rt.cfg, rt.from.ring)
	if !mf.StartAt.IsZero() {
		return rt.routeBefore()
	}
	return nil
}

// routeBefore builds rt.before: the routing of a pool whose placement is
// migrate_from's, over the old owners, as a proxy still running the file
// without migrate_from routes. Ejection follows the pool's settings: when
// the pool's distribution is jump, its eject_mode is fail_fast, so an
// ejected old owner's keys fail fast rather than move to other servers,
// where the migration would not look for them.
func (rt *routing) routeBefore() error {
	mf := rt.cfg.MigrateFrom
	old := *rt.cfg
	old.Servers, old.Hash, old.HashTag, old.Distribution, old.Slots = mf.Servers, mf.Hash, mf.HashTag, mf.Distribution, mf.Slots
	old.MigrateFrom = nil
	before, err := newRouting(&old, rt.from.ring)
	if err != nil {
		return fmt.Errorf("pool %q: migrate_from: %w", rt.cfg.Name, err)
	}
	rt.before = before
	return nil
}

// active returns the routing a batch is served by: rt itself, or, while
// a migration waits for its start_at, the routing of the old placement.
// Without a start time it costs one comparison; with one, a clock reading
// per batch until the migration has started (then a flag), and once
// started it stays started, even if the clock steps back.
func (rt *routing) active() *routing {
	if rt.before == nil || rt.mig.Started() || rt.mig.Begin(time.Now()) {
		return rt
	}
	return rt.before
}

// rebuilt returns the routing of the same pool for its servers' current
// ejection states; a migration goes on with its state.
func (rt *routing) rebuilt() (*routing, error) {
	if rt.slots != nil {
		return rt, nil // a cluster's nodes are never ejected
	}
	next, err := newRouting(rt.cfg, rt.servers)
	if err == nil && next.mig != nil {
		next.mig = rt.mig
	}
	return next, err
}

// failFast says an ejected server stays in the ring and its keys fail
// fast, so ejection never moves a key.
func (rt *routing) failFast() bool { return failFast(rt.cfg) }

// failFast says a pool keeps an ejected server in the ring, its keys
// failing fast: eject_mode fail_fast, always in the slot mode, during a
// migration, and with sentinels. A migration would otherwise move the
// keys of an ejected new owner to a server that is neither their old
// owner nor their owner once it is back, and the data would be lost
// behind the proxy; a shard under Sentinel fails over instead, and its
// keys must not move meanwhile.
func failFast(cfg *config.Pool) bool {
	return cfg.Distribution == "jump" || cfg.EjectMode == config.EjectFailFast || cfg.MigrateFrom != nil ||
		cfg.Sentinel.Enabled()
}

// placed is a placement of keys over servers: ring[i] is the server of
// place's index i. In a cluster pool, slots places keys instead: the
// ring index of each of the cluster's slots (cluster.Uncovered for a
// slot no node serves).
type placed struct {
	place *hashring.Placement
	ring  []*pools.Server // placement index -> server
	slots *[hashring.ClusterSlots]uint16
}

// locate returns the ring index of the server that holds key, or -1 when
// no server is in the ring. It is the one place where a key meets a
// placement: every request's keys are routed through the routing's
// (routing.locate), and a key's owner before a migration is found
// through migrate_from's (Owners).
func (pl *placed) locate(key []byte) int {
	if pl.slots != nil {
		s := pl.slots[hashring.ClusterSlot(key)]
		if s == cluster.Uncovered {
			return -1
		}
		return int(s)
	}
	i := pl.place.Pick(key)
	if i < 0 || i >= len(pl.ring) {
		return -1
	}
	return i
}

// fragment identifies the part of a split request key goes in: its ring
// index (fragServer), and in a cluster pool its slot too, since a
// cluster serves a multi-key request only within one slot. It is -1
// when no server holds key.
func (pl *placed) fragment(key []byte) int {
	if pl.slots == nil {
		return pl.locate(key)
	}
	slot := hashring.ClusterSlot(key)
	s := pl.slots[slot]
	if s == cluster.Uncovered {
		return -1
	}
	return slot<<16 | int(s)
}

// fragServer is the ring index of a fragment of placed.fragment.
func fragServer(f int) int { return f & 0xffff }

// Owners returns, for package migration, the server that held key before
// the migration (its old owner; nil without a migration) and the server
// that holds it now (nil when no server is in the ring). A key whose two
// differ must move before a request touches it. It implements
// migration.Placement.
func (rt *routing) Owners(key []byte) (before, now *pools.Server) {
	if i := rt.locate(key); i >= 0 {
		now = rt.ring[i]
	}
	if rt.from.place != nil {
		if j := rt.from.locate(key); j >= 0 {
			before = rt.from.ring[j]
		}
	}
	return before, now
}

// With replica_reads, a read-only command (commands.Command.ReadOnly) of a
// shard goes to one of its replicas that the pool's failover.Follower
// keeps (in a cluster pool, those of its slot map: cluster_replicas.go),
// spread by client, when one is up; else to its primary. Never during a
// migration: the new owner's replica may not have a moved key yet. A read
// a replica does not serve (its call failed, or it refused:
// failover.Refuses) is sent to the primary before the client is answered
// (retryOnPrimary).

// readServer returns the server a request of client id and cmd for ring
// index i goes to: a replica of its primary for a read-only command when
// the pool reads from replicas, else the primary. primary is the primary
// when srv is a replica, else nil.
func (p *pool) readServer(rt *routing, cmd *commands.Command, i int, id uint64) (srv, primary *pools.Server) {
	srv = rt.ring[i]
	if cmd.ReadOnly && rt.replicaReads {
		var r *pools.Server
		if rt.slots != nil {
			r = rt.clusterReplica(i, id)
		} else {
			r = p.follower.Replica(srv, id)
		}
		if r != nil {
			return r, srv
		}
	}
	return srv, nil
}

// server returns the server that holds key now, or nil.
func (rt *routing) server(key []byte) *pools.Server {
	if i := rt.locate(key); i >= 0 {
		return rt.ring[i]
	}
	return nil
}

func newLimits(cfg *config.Pool) limits {
	l := limits{
		maxRequest:   cfg.MaxRequestSize,
		idleTimeout:  cfg.ClientIdleTimeout,
		timeout:      cfg.Timeout,
		parkAfter:    cfg.ClientParkAfter,
		writeTimeout: cfg.ClientWriteTimeout,
		outputLimit:  cfg.ClientOutputLimit,
	}
	if l.maxRequest <= 0 {
		l.maxRequest = config.DefaultMaxRequestSize
	}
	l.resp = resp.Limits{MaxArgs: cfg.MaxArgs, MaxBulk: l.maxRequest}
	l.memcache.MaxValue = min(l.maxRequest, maxMemcacheValue)
	if cfg.MaxArgs > 0 {
		l.memcache.MaxKeys = min(cfg.MaxArgs, memcache.DefaultMaxKeys)
	}
	return l
}
