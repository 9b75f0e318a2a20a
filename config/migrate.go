package config

import (
	"errors"
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// DefaultMigrateRate is the background mover's budget in keys per second
// when a pool does not give migrate_rate.
const DefaultMigrateRate = 1000

// Placement is where a pool's keys are placed: its servers, hash, hash tag,
// distribution and slot table, as the pool keys of those names give them.
// A migration's Placement (Pool.MigrateFrom) says where the data is now.
type Placement struct {
	Servers      []Server
	Hash         string
	HashTag      string
	Distribution string
	Slots        []int // as Pool.Slots: nil unless given with distribution jump
	// StartAt is when the migration starts (migrate_from's start_at), in
	// UTC; zero: as soon as a proxy loads the file. Before it, a proxy
	// routes by this placement alone, as one still running the file
	// without migrate_from does.
	StartAt time.Time
}

// migrateKeys are the keys of a migrate_from mapping: the placement keys a
// pool takes, with the same values, and start_at.
var migrateKeys = []string{"servers", "hash", "hash_tag", "distribution", "slots", startAtKey}

// startAtKey is migrate_from's start time: an RFC 3339 time such as
// "2026-11-30T10:30:00Z".
const startAtKey = "start_at"

// setMigrateFrom keeps the migrate_from mapping until the pool's own keys,
// its defaults, are known (finishMigration).
func setMigrateFrom(pp *poolParse, v *yaml.Node) error {
	pp.migrate = v
	return nil
}

// finishMigration reads the migrate_from mapping into Pool.MigrateFrom:
// every key it omits is the pool's. Errors name the key as
// "migrate_from.servers" and the like.
func (pp *poolParse) finishMigration() error {
	if pp.migrate == nil {
		return nil
	}
	p := pp.pool
	if !p.Redis {
		return &Error{Pool: p.Name, Key: "migrate_from", Line: pp.keys["migrate_from"],
			Err: errors.New("migrate_from needs redis: true; a memcache pool is a cache, and a change of its " +
				"servers re-maps keys: the new owners fill up on misses, with nothing to move")}
	}
	// The old placement is parsed as a pool of its own that starts from
	// the pool's placement, so its keys have a pool's rules and setters.
	// A cluster pool has no placement of its own: the old pool's starts
	// from nutcracker's defaults, and its servers must be given.
	from := &Pool{Name: p.Name, Redis: true, Servers: p.Servers, Hash: p.Hash, HashTag: p.HashTag, Distribution: p.Distribution}
	if p.RedisCluster {
		d := newPool(p.Name)
		from = &Pool{Name: p.Name, Redis: true, Hash: d.Hash, Distribution: d.Distribution}
	}
	old := &poolParse{pool: from, line: pp.keys["migrate_from"], keys: map[string]int{}}
	m := pp.migrate
	var start time.Time
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == startAtKey {
			t, err := old.startAt(k, v)
			if err != nil {
				return err
			}
			start = t
			continue
		}
		if err := old.setMigrateKey(k, v); err != nil {
			return err
		}
	}
	op := old.pool
	if p.RedisCluster && old.keys["servers"] == 0 {
		return &Error{Pool: p.Name, Key: "migrate_from.servers", Line: old.line,
			Err: errors.New("required in a cluster pool: the servers of the old pool the keys move from " +
				"(the pool's servers are the cluster's seed nodes)")}
	}
	if p.Distribution == "random" || op.Distribution == "random" {
		key, line := "distribution", pp.lineOf("distribution")
		if op.Distribution == "random" {
			key, line = "migrate_from.distribution", old.lineOf("distribution")
		}
		return &Error{Pool: p.Name, Key: key, Line: line,
			Err: errors.New("distribution random places no key anywhere in particular: a migration cannot find what to move")}
	}
	if old.slots == nil && op.Distribution == "jump" && old.keys["servers"] == 0 && old.keys["distribution"] == 0 {
		op.Slots = p.Slots // the pool's own table, unless the servers or the distribution differ
	}
	if old.slots != nil {
		if op.Distribution != "jump" {
			return &Error{Pool: p.Name, Key: "migrate_from.slots", Line: old.keys["slots"],
				Err: fmt.Errorf("slots needs distribution: jump, not %q", op.Distribution)}
		}
		slots, err := slotTable(old.slots, op.Servers)
		if err != nil {
			return old.wrap("migrate_from.slots", old.keys["slots"], err)
		}
		op.Slots = slots
	}
	if err := checkJumpServers(op); err != nil {
		return old.wrap("migrate_from.servers", old.lineOf("servers"), err)
	}
	if err := migrationServers(p, op, old.lineOf("servers")); err != nil {
		return err
	}
	p.MigrateFrom = &Placement{Servers: op.Servers, Hash: op.Hash, HashTag: op.HashTag,
		Distribution: op.Distribution, Slots: op.Slots, StartAt: start}
	return nil
}

// startAt reads migrate_from's start_at: an RFC 3339 time, kept in UTC.
func (pp *poolParse) startAt(k, v *yaml.Node) (time.Time, error) {
	name := "migrate_from." + startAtKey
	if first, ok := pp.keys[startAtKey]; ok {
		return time.Time{}, pp.wrap(name, k.Line, fmt.Errorf("key given twice (first at line %d)", first))
	}
	pp.keys[startAtKey] = k.Line
	if v.Kind != yaml.ScalarNode {
		return time.Time{}, pp.wrap(name, k.Line, badValue(v.Value, "want %s, got %s", kindName(yaml.ScalarNode), kindName(v.Kind)))
	}
	t, err := time.Parse(time.RFC3339, v.Value)
	if err != nil {
		return time.Time{}, pp.wrap(name, v.Line,
			badValue(v.Value, "want an RFC 3339 time such as \"2026-11-30T10:30:00Z\""))
	}
	return t.UTC(), nil
}

// setMigrateKey applies one key of migrate_from.
func (pp *poolParse) setMigrateKey(k, v *yaml.Node) error {
	name := "migrate_from." + k.Value
	if k.Kind != yaml.ScalarNode || !oneOf(k.Value, migrateKeys) {
		return &Error{Pool: pp.pool.Name, Key: "migrate_from", Line: k.Line,
			Err: fmt.Errorf("unknown key %q in migrate_from; it takes %v", k.Value, migrateKeys)}
	}
	if first, ok := pp.keys[k.Value]; ok {
		return pp.wrap(name, k.Line, fmt.Errorf("key given twice (first at line %d)", first))
	}
	pp.keys[k.Value] = k.Line
	spec := lookupKey(k.Value)
	if v.Kind != spec.kind {
		return pp.wrap(name, k.Line, badValue(v.Value, "want %s, got %s", kindName(spec.kind), kindName(v.Kind)))
	}
	if err := spec.set(pp, v); err != nil {
		var e *Error
		if errors.As(err, &e) && e.Key == "servers" {
			e.Key = name // a server line's own error
		}
		return pp.wrap(name, v.Line, err)
	}
	return nil
}

// migrationServers checks the servers of both placements: a server named
// in both must be the same server, and every server of the pool must be
// reachable by MIGRATE, which connects by host and port. Into a cluster
// pool, no old server may be a seed node: the keys move out of every old
// server, into the cluster.
func migrationServers(p, old *Pool, line int) error {
	if p.RedisCluster {
		return clusterMigrationServers(p, old, line)
	}
	at := map[string]Server{}
	for _, s := range p.Servers {
		at[s.Ident] = s
		if s.Network != "tcp" {
			return &Error{Pool: p.Name, Key: "servers", Line: line,
				Err: fmt.Errorf("server %q is a unix socket: MIGRATE moves keys to a host and port", s.Ident)}
		}
	}
	for _, s := range old.Servers {
		if n, ok := at[s.Ident]; ok && (n.Network != s.Network || n.Addr != s.Addr) {
			return &Error{Pool: p.Name, Key: "migrate_from.servers", Value: s.Addr, Line: line,
				Err: fmt.Errorf("server %q is at %s in servers but at %s in migrate_from: one name, one server", s.Ident, n.Addr, s.Addr)}
		}
		if s.Network != "tcp" {
			return &Error{Pool: p.Name, Key: "migrate_from.servers", Line: line,
				Err: fmt.Errorf("server %q is a unix socket: MIGRATE moves keys from a host and port", s.Ident)}
		}
	}
	return nil
}

// clusterMigrationServers checks the old servers of a migration into a
// cluster pool: TCP, and none of them a seed node of the cluster.
func clusterMigrationServers(p, old *Pool, line int) error {
	seeds := map[string]bool{}
	for _, s := range p.Servers {
		seeds[s.Addr] = true
	}
	for _, s := range old.Servers {
		if s.Network != "tcp" {
			return &Error{Pool: p.Name, Key: "migrate_from.servers", Line: line,
				Err: fmt.Errorf("server %q is a unix socket: MIGRATE moves keys from a host and port", s.Ident)}
		}
		if seeds[s.Addr] {
			return &Error{Pool: p.Name, Key: "migrate_from.servers", Value: s.Addr, Line: line,
				Err: fmt.Errorf("server %q is also a seed node of the cluster: migrate_from lists the servers "+
					"of the old (nutcracker) pool, which are not cluster nodes", s.Ident)}
		}
	}
	return nil
}

// Warnings returns what is allowed but should not stay in a file: a
// migration left in place once it is complete costs every access to a
// moved key a MIGRATE round trip. The warning also says when a fleet of
// proxies could disagree on it: without start_at each proxy starts as it
// loads the file, and a start_at more than a day past is likely left
// from an earlier migration.
func (c *Config) Warnings() []string { return c.warnings(time.Now()) }

// staleStart is how far in the past start_at draws a warning.
const staleStart = 24 * time.Hour

func (c *Config) warnings(now time.Time) []string {
	var out []string
	for _, p := range c.Pools {
		mf := p.MigrateFrom
		if mf == nil {
			continue
		}
		w := fmt.Sprintf("pool %q: a migration is configured (migrate_from, line %d): "+
			"remove it and reload once the pool's migration_pending is 0", p.Name, p.Line("migrate_from"))
		switch {
		case mf.StartAt.IsZero():
			w += "; it has no start_at, so each proxy starts it as soon as it loads the file: " +
				"with several proxies, give start_at a few minutes ahead and reload them all before it"
		case now.Sub(mf.StartAt) > staleStart:
			w += fmt.Sprintf("; its start_at (%s) is more than a day past, so each proxy starts it as soon as "+
				"it loads the file: for a new migration with several proxies, give start_at a few minutes ahead",
				mf.StartAt.Format(time.RFC3339))
		}
		out = append(out, w)
	}
	return out
}
