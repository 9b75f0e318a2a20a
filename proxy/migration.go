package proxy

import (
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/migration"
	"github.com/shardproxy/shardproxy/pools"
)

// A Redis pool with migrate_from moves its data through its
// migration.Mover (p.mover). The routing value holds the migration's
// state (routing.mig) and tells where a key was and is (routing.Owners);
// a request calls the Mover from one place, moveKeys, and the pool fills
// in its seam, migration.Pool, with keyspace below.

// keyspace is the pool as its migration.Mover sees it.
type keyspace struct{ p *pool }

// Placement returns the pool's routing now, while m is its migration.
func (ks keyspace) Placement(m *migration.State) migration.Placement {
	rt := ks.p.routing()
	if rt.mig != m {
		return nil
	}
	return rt
}

// Options returns the options of the server of line, as the pool dials
// it.
func (ks keyspace) Options(cfg *config.Pool, line config.Server) (pools.Options, error) {
	roots, err := cfg.ServerRoots()
	if err != nil {
		return pools.Options{}, err
	}
	return ks.p.serverOptions(cfg, line, roots), nil
}

// Migrated counts n keys moved, and their rate.
func (ks keyspace) Migrated(n int) {
	st := &ks.p.stats
	st.keysMigrated.Add(int64(n))
	st.migrateRate.add(time.Now(), int64(n))
}

// Failed counts a move or a SCAN that failed.
func (ks keyspace) Failed() { ks.p.stats.migrationErrors.Add(1) }

// KeysMigrated is the count of keys moved.
func (ks keyspace) KeysMigrated() int64 { return ks.p.stats.keysMigrated.Load() }

// Go runs f in a goroutine that the pool's close waits for.
func (ks keyspace) Go(f func()) {
	p := ks.p
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f()
	}()
}

// setMover hands the pool's current migration (none without one) to its
// Mover, which stops the scan of an earlier one.
func (p *pool) setMover() { p.mover.Set(p.routing().mig) }

// moveKeys moves the keys of a request whose owner changed before the
// request is forwarded (migration.Mover.Access). It returns false when a
// move failed or is still going on: the request is then answered with the
// error, and the key stays on its old owner.
func (r *redisProto) moveKeys(bt *batch, keys [][]byte) bool {
	if failed := r.p.mover.Access(bt.rt.mig, bt.rt, keys); failed != "" {
		errorReply(bt, "ERR migrating "+failed)
		return false
	}
	return true
}
