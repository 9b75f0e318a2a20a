package migration

import (
	"log/slog"
	"sync"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/pools"
)

// Pool is what a Mover needs of the pool whose keys it moves. Options is
// called with the Mover's lock held (Set), the others without.
type Pool interface {
	// Placement returns the pool's routing now, when m is still its
	// migration; nil once a reload ended m.
	Placement(m *State) Placement
	// Options returns the options of a connection to the server of one
	// of cfg's lines, as the pool dials its servers (TLS, AUTH, SELECT,
	// and with sentinels the master's primary): the Mover makes its own
	// connections with them.
	Options(cfg *config.Pool, line config.Server) (pools.Options, error)
	// Migrated counts n keys moved (keys_migrated); Failed a move or
	// SCAN that failed (migration_errors); KeysMigrated is the count of
	// keys moved so far.
	Migrated(n int)
	Failed()
	KeysMigrated() int64
	// Go runs f in a goroutine that closing the pool waits for.
	Go(f func())
	// Redirected is told the error a MIGRATE's target answered (msg,
	// as MIGRATE reports it). When the target is a Redis Cluster node
	// that does not serve a key's slot now (MOVED, ASK, TRYAGAIN,
	// CLUSTERDOWN), the pool follows it (its slot map is patched or
	// refreshed) and reports ok with how long to wait before the keys
	// left are placed again and moved again; otherwise it reports false.
	Redirected(msg string) (pause time.Duration, ok bool)
}

// Placement is where a pool's routing places keys, at one moment.
type Placement interface {
	// Owners returns the server that held key before the migration (its
	// old owner) and the server that holds it now (its owner): nil for
	// none.
	Owners(key []byte) (before, now *pools.Server)
}

// Mover moves the keys of a pool's migrations: on access (Access), and in
// the background, where a scanner per migration walks each old owner with
// SCAN and moves the keys whose owner changed with MIGRATE, within the
// pool's migrate_rate. The pool hands it each new migration (Set) and
// stops it on close (Stop). Its methods may be called from any goroutine.
//
// Lock order: mu, then a State's locks; mu is held while a scanner is
// stopped (at most moverHaltWait).
type Mover struct {
	pool Pool
	log  *slog.Logger

	mu sync.Mutex
	// run scans the keys of the current migration; nil without one.
	// retired are migrations a reload replaced whose moves on access
	// still hold connections. closed says Stop was called.
	run     *scanner
	retired []*State
	closed  bool
}

// NewMover returns the Mover of pool's migrations; it moves nothing
// until Set.
func NewMover(pool Pool, log *slog.Logger) *Mover {
	return &Mover{pool: pool, log: log}
}

// moverHaltWait bounds how long stopping a scanner waits for its
// goroutine: closing its connections fails whatever it waits for on a
// server, so it ends at once, but neither a reload nor Close waits on a
// server.
const moverHaltWait = time.Second

// Set starts the scanner of m, the pool's current migration (nil
// without one), stopping the one of an earlier migration; without a
// migration it only stops.
func (mv *Mover) Set(m *State) {
	mv.mu.Lock()
	defer mv.mu.Unlock()
	if mv.run != nil && mv.run.mig == m {
		return
	}
	if mv.run != nil {
		mv.run.halt(moverHaltWait)
		mv.retire(mv.run.mig)
		mv.run = nil
	}
	if m == nil {
		return
	}
	if mv.closed {
		m.close()
		return
	}
	sc := &scanner{mv: mv, mig: m, stop: make(chan struct{}), done: make(chan struct{})}
	for _, line := range m.cfg.MigrateFrom.Servers {
		opt, err := mv.pool.Options(m.cfg, line)
		if err != nil {
			mv.log.Error("migration: the mover cannot start", "err", err)
			closeAll(sc.own)
			m.close()
			return
		}
		opt.Connections, opt.Timeout, opt.AutoEject, opt.FailFast = 1, 0, false, false
		sc.own = append(sc.own, pools.NewServer(opt))
	}
	mv.run = sc
	go sc.run()
}

// Stop stops the scanner, if it runs, and every move of its migration and
// of those it replaced; a later Set starts nothing.
func (mv *Mover) Stop() {
	mv.mu.Lock()
	defer mv.mu.Unlock()
	mv.closed = true
	if mv.run != nil {
		mv.run.halt(moverHaltWait)
		mv.run.mig.close()
		mv.run = nil
	}
	for _, m := range mv.retired {
		m.close()
	}
	mv.retired = nil
}

// retire lets the moves on access of a migration that a reload replaced
// end (a client holding the old routing waits for them), closing their
// connections as they do; Stop closes those still in use.
func (mv *Mover) retire(m *State) {
	live := mv.retired[:0]
	for _, r := range mv.retired {
		if r.conns.retire() {
			live = append(live, r)
		}
	}
	mv.retired = live
	if m.conns.retire() {
		mv.retired = append(mv.retired, m)
	}
}

// Servers returns the scanner's own connections to the old owners named
// name (a Sentinel master name), which a failover moves too.
func (mv *Mover) Servers(name string) []*pools.Server {
	mv.mu.Lock()
	defer mv.mu.Unlock()
	var out []*pools.Server
	if mv.run != nil {
		for _, s := range mv.run.own {
			if s.Name() == name {
				out = append(out, s)
			}
		}
	}
	return out
}
