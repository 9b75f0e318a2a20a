package migration

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/pools"
)

// State is the state of a pool's migration (migrate_from): the keys being
// moved on access now, and the background mover's progress. The routing
// values rebuilt for ejection share it; a reload that builds a new routing
// starts a new one.
type State struct {
	// cfg is the pool's configuration, with its migrate_from; from are
	// the servers of migrate_from (the old owners), in its order.
	cfg  *config.Pool
	from []*pools.Server
	// start is migrate_from's start_at; zero: at once.
	start time.Time
	// every says every key an old owner holds moves, wherever
	// migrate_from places it: into a cluster pool, no old owner is a
	// new one.
	every bool

	mu sync.Mutex
	// inflight are the keys a client is moving now: another request for
	// one of them waits for that MIGRATE instead of sending its own.
	inflight map[string]*keyMove
	// pending is the number of old owners the mover has still to scan
	// (migration_pending); complete is set once it is 0.
	pending  atomic.Int64
	complete atomic.Bool
	// started is set once the migration routes by the new placement: at
	// once without start_at, else from the first batch or mover that
	// finds start_at reached (begin). It is never cleared.
	started atomic.Bool
	// lanes keeps MIGRATEs from waiting on each other (see acquire).
	lanes lanes
	// proxied holds, per lane (source and target), until when its keys
	// go through the proxy because the source failed to MIGRATE
	// (restore.go); undeleted the keys so moved whose DEL on the source
	// failed (under mu).
	proxied   sync.Map
	undeleted map[string]bool
	// conns are the connections keys move on when clients access them
	// (the mover has its own); closing them (close) stops those moves.
	conns moveConns
}

// New returns the state of the migration of cfg (its migrate_from, which
// must be set) from the servers of migrate_from's lines, in their order.
// It starts nothing: a Mover moves its keys.
func New(cfg *config.Pool, from []*pools.Server) *State {
	m := newState(len(from), cfg.MigrateFrom.StartAt.IsZero())
	m.cfg, m.from, m.start, m.every = cfg, from, cfg.MigrateFrom.StartAt, cfg.RedisCluster
	return m
}

func newState(owners int, started bool) *State {
	m := &State{inflight: map[string]*keyMove{}}
	m.pending.Store(int64(owners))
	m.started.Store(started)
	return m
}

// Pending is the number of old owners the mover has still to scan
// (migration_pending).
func (m *State) Pending() int64 { return m.pending.Load() }

// Started reports whether the migration routes by the new placement: at
// once without start_at, else once Begin found start_at reached. It is
// one atomic load.
func (m *State) Started() bool { return m.started.Load() }

// Begin reports whether the migration has started by now (a wall-clock
// time), and marks it started when it has: once started it stays
// started, even if the clock steps back.
func (m *State) Begin(now time.Time) bool { return m.begin(m.start, now) }

// begin reports whether a migration that starts at start has started by
// now, and marks it started when it has.
func (m *State) begin(start, now time.Time) bool {
	if m.started.Load() {
		return true
	}
	if now.Before(start) {
		return false
	}
	m.started.Store(true)
	return true
}

// close stops the migration's moves on access: what they wait for on
// their connections fails at once, and no new one starts.
func (m *State) close() { m.conns.close() }

// lanes are the MIGRATEs in flight between a pool's servers. A MIGRATE
// blocks its source server until the target has stored the keys, so two
// crossing MIGRATEs (a to b while b to a, or a longer cycle) would each
// wait for the other until their timeout. acquire lets a MIGRATE from
// one server to another start only while no MIGRATE moves keys into its
// source or out of its target: the target is then never blocked in a
// MIGRATE of its own, and answers.
type lanes struct {
	mu       sync.Mutex
	cond     *sync.Cond
	src, dst map[*pools.Server]int
}

func (l *lanes) acquire(from, to *pools.Server) {
	l.mu.Lock()
	if l.cond == nil {
		l.cond = sync.NewCond(&l.mu)
		l.src, l.dst = map[*pools.Server]int{}, map[*pools.Server]int{}
	}
	for l.dst[from] > 0 || l.src[to] > 0 {
		l.cond.Wait()
	}
	l.src[from]++
	l.dst[to]++
	l.mu.Unlock()
}

func (l *lanes) release(from, to *pools.Server) {
	l.mu.Lock()
	l.src[from]--
	l.dst[to]--
	l.mu.Unlock()
	l.cond.Broadcast()
}

// keyMove is one key's MIGRATE in flight: done is closed once it is
// answered, err then says whether it failed.
type keyMove struct {
	done chan struct{}
	err  error
}

// waitCall is a call the proxy sends on its own behalf (MIGRATE, SCAN):
// done is closed when it is answered.
type waitCall struct {
	pools.Call
	done chan struct{}
}

func newWaitCall(frame []byte) *waitCall {
	c := &waitCall{done: make(chan struct{})}
	c.Frame, c.Done, c.Sent = frame, c, time.Now()
	return c
}

// CallDone implements pools.Doner.
func (c *waitCall) CallDone(*pools.Call) { close(c.done) }

// send enqueues the call on conn and flushes it.
func (c *waitCall) send(conn *pools.Conn) {
	conn.Enqueue(&c.Call)
	conn.Flush()
}
