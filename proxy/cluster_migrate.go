package proxy

import (
	"crypto/x509"
	"slices"
	"strings"
	"time"

	"github.com/shardproxy/shardproxy/cluster"
	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/pools"
)

// A cluster pool with migrate_from moves a nutcracker pool's keys into
// its cluster, as a migration between two placements does (migration.go):
// migrate_from's servers are ordinary servers of the pool (not cluster
// nodes), placed by migrate_from's hash and distribution (routing.from),
// and a key's owner is its slot's primary by the pool's map. The slot map
// changes at run time, so the routing of each map carries the migration
// of the routing it replaces (migrating): the old servers, their
// placement, the migration's state and, with start_at, the routing of the
// old placement alone. None of the old servers is a cluster node, so the
// mover moves every key it finds on them. When the target of a MIGRATE
// does not serve a key's slot any more (a reshard, a failover), the pool
// follows the node's refusal (keyspace.Redirected) and the migration
// moves the keys again by the fresher map.

// newClusterMigration builds the migration of cluster pool cfg from
// migrate_from's servers, old (one per line, in its order): a routing
// value that carries only the migration (from, mig, before), which
// migrating hands to every routing of the pool's maps.
func newClusterMigration(cfg *config.Pool, old []*pools.Server) (*routing, error) {
	carrier := &routing{cfg: cfg, servers: old}
	if err := carrier.migrateFrom(cfg.MigrateFrom.Servers); err != nil {
		return nil, err
	}
	if carrier.before != nil {
		carrier.before.replicaReads = false // the old servers have no replicas the pool knows
	}
	carrier.servers = nil
	return carrier, nil
}

// migrating returns rt, a cluster pool's routing, with the migration that
// src carries (the routing rt replaces, or one newClusterMigration made);
// rt as it is when src has none. Its servers are then the primaries and
// the old servers, so that the keyspace commands see every key, and it
// reads from no replica: a replica may not have a moved key yet.
func (rt *routing) migrating(src *routing) *routing {
	if src == nil || src.mig == nil {
		return rt
	}
	rt.from, rt.mig, rt.before = src.from, src.mig, src.before
	rt.servers = slices.Concat(rt.ring, src.from.ring)
	rt.replicaReads = false
	return rt
}

// newClusterMigration makes the old servers of cluster pool cfg's
// migration and returns the routing that carries it (nil without
// migrate_from).
func (p *pool) newClusterMigration(cfg *config.Pool, roots *x509.CertPool) (*routing, error) {
	if cfg.MigrateFrom == nil {
		return nil, nil
	}
	old := make([]*pools.Server, len(cfg.MigrateFrom.Servers))
	for i, line := range cfg.MigrateFrom.Servers {
		old[i] = p.newServer(cfg, line, roots)
	}
	carrier, err := newClusterMigration(cfg, old)
	if err != nil {
		for _, s := range old {
			s.Close()
		}
	}
	return carrier, err
}

// reloadClusterMigration prepares the migration of a cluster pool that a
// reload changes to pc: a new one (a new migration state, whose mover
// scans again) over the old servers of pc's migrate_from, keeping the
// servers of cur's whose lines and settings stay. Servers it makes go to
// ch.fresh, those that leave to ch.gone. It returns the routing that
// carries the migration, nil without migrate_from.
func (p *pool) reloadClusterMigration(ch *poolChange, cur *routing, pc *config.Pool) (*routing, error) {
	reuse := map[string]*pools.Server{}
	if cur.mig != nil && cur.cfg.SameServerSettings(pc) {
		for i, line := range cur.cfg.MigrateFrom.Servers {
			reuse[serverKey(line)] = cur.from.ring[i]
		}
	}
	kept := map[*pools.Server]bool{}
	defer func() {
		if cur.mig == nil {
			return
		}
		for _, s := range cur.from.ring {
			if !kept[s] {
				ch.gone = append(ch.gone, s)
			}
		}
	}()
	if pc.MigrateFrom == nil {
		return nil, nil
	}
	var roots *x509.CertPool
	if pc.ServerTLS.Enabled {
		var err error
		if roots, err = pc.ServerRoots(); err != nil {
			return nil, err
		}
	}
	old := make([]*pools.Server, len(pc.MigrateFrom.Servers))
	for i, line := range pc.MigrateFrom.Servers {
		if s, ok := reuse[serverKey(line)]; ok && !kept[s] {
			old[i], kept[s] = s, true
			continue
		}
		old[i] = p.newServer(pc, line, roots)
		ch.fresh = append(ch.fresh, old[i])
	}
	return newClusterMigration(pc, old)
}

// migrateTargetError is how MIGRATE reports an error reply of its target.
const migrateTargetError = "Target instance replied with error: "

// askPause is how long a move waits when its target answered ASK: its
// slot is migrating to another node, which takes a key only behind
// ASKING, which MIGRATE does not send; once the slot has moved, the
// node that had it answers MOVED.
const askPause = 50 * time.Millisecond

// Redirected follows a cluster node's refusal of keys a MIGRATE moved to
// it (migration.Pool): a MOVED patches the pool's map at once and asks
// for a refresh, as for a client's request; ASK, TRYAGAIN and
// CLUSTERDOWN ask for a refresh and a pause. It reports false in other
// pools and for other errors.
func (ks keyspace) Redirected(msg string) (pause time.Duration, ok bool) {
	cs := ks.p.cluster
	i := strings.Index(msg, migrateTargetError)
	if cs == nil || i < 0 {
		return 0, false
	}
	reply := "-" + msg[i+len(migrateTargetError):] + "\r\n"
	kind, slot, addr := cluster.Classify([]byte(reply), ks.p.routing().cfg.Servers[0].Host)
	switch kind {
	case cluster.Moved:
		cs.patch(slot, addr, cs.keeper.Node(addr))
		cs.topo.Refresh()
		return 0, true
	case cluster.Ask:
		return askPause, true
	case cluster.TryAgain:
		return clusterRetry[kind], true
	case cluster.Down:
		cs.topo.Refresh()
		return clusterRetry[kind], true
	}
	return 0, false
}
