package proxy

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/pools"
)

// migration is the state of a pool's migration (migrate_from): the keys
// being moved on access now, and the background mover's progress. The
// routing values rebuilt for ejection share it; a reload that builds a new
// routing starts a new one.
type migration struct {
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

// close stops the migration's moves on access: what they wait for on
// their connections fails at once, and no new one starts.
func (m *migration) close() { m.conns.close() }

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

// migrate sends a MIGRATE of keys from one server to another on conn, a
// connection to from, once acquire lets it, and waits for its answer.
func (m *migration) migrate(conn *pools.Conn, cfg *config.Pool, from, to *pools.Server, keys [][]byte) *waitCall {
	call := newWaitCall(migrateFrame(cfg, to, keys))
	m.lanes.acquire(from, to)
	call.send(conn)
	<-call.done
	m.lanes.release(from, to)
	return call
}

// keyMove is one key's MIGRATE in flight: done is closed once it is
// answered, err then says whether it failed.
type keyMove struct {
	done chan struct{}
	err  error
}

func newMigration(owners int, started bool) *migration {
	m := &migration{inflight: map[string]*keyMove{}}
	m.pending.Store(int64(owners))
	m.started.Store(started)
	return m
}

// begin reports whether a migration that starts at start has started by
// now (a wall-clock time), and marks it started when it has.
func (m *migration) begin(start, now time.Time) bool {
	if m.started.Load() {
		return true
	}
	if now.Before(start) {
		return false
	}
	m.started.Store(true)
	return true
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

// moveGroup is keys moving from one old owner to one new owner: one
// MIGRATE.
type moveGroup struct {
	from, to *pools.Server
	keys     [][]byte
}

// moveKeys moves each of a request's keys whose owner changed from its old
// owner to its new one, before the request is forwarded: one MIGRATE per
// old and new owner, one after the other, while requests for a key
// another client is moving wait for that one. The moves run in a
// goroutine of their own, on the migration's connections (moveConns); the
// client waits for them at most the pool's timeout, and a move it stops
// waiting for goes on.
// It returns false when a move failed or is still going on: the request is
// then answered with the error, and the key stays on its old owner.
func (r *redisProto) moveKeys(bt *batch, keys [][]byte) bool {
	rt, m := bt.rt, bt.rt.mig
	if m.complete.Load() {
		return true
	}
	var groups []*moveGroup
	var waits []*keyMove
	var waitKeys [][]byte
	m.mu.Lock()
	for _, k := range keys {
		i := rt.locate(k)
		old := rt.moving(k, i)
		if old == nil || i < 0 {
			continue
		}
		mv, ok := m.inflight[string(k)]
		if !ok {
			mv = &keyMove{done: make(chan struct{})}
			m.inflight[string(k)] = mv
			g := findGroup(&groups, old, rt.ring[i])
			// A copy: the move may outlive the client's buffer.
			g.keys = append(g.keys, bytes.Clone(k))
		}
		waits, waitKeys = append(waits, mv), append(waitKeys, k)
	}
	m.mu.Unlock()
	if len(groups) > 0 {
		p := r.p
		p.wg.Add(1) // the client's goroutine counts in p.wg: Close waits for this one too
		go func() {
			defer p.wg.Done()
			for _, g := range groups {
				// One at a time: this goroutine holds no lane while it waits.
				err := m.move(p, rt.cfg, &m.conns, g.from, g.to, g.keys, false)
				m.release(g.keys, moveError(g.from, g.to, err))
			}
		}()
	}
	if failed := waitMoves(waits, waitKeys, rt.cfg.Timeout); failed != "" {
		errorReply(bt, "ERR migrating "+failed)
		return false
	}
	return true
}

// waitMoves waits for the moves of keys, at most timeout when it is not 0,
// and returns what failed ("key 'k' from a to b: cause"), or "".
func waitMoves(waits []*keyMove, keys [][]byte, timeout time.Duration) string {
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	for j, mv := range waits {
		select {
		case <-mv.done:
		case <-expired:
			return fmt.Sprintf("key '%s': not moved within the pool's timeout (%v); the move goes on", clip(keys[j]), timeout)
		}
		if mv.err != nil {
			return fmt.Sprintf("key '%s' %v", clip(keys[j]), mv.err)
		}
	}
	return ""
}

// findGroup returns the group of keys moving from one server to another,
// adding it to groups when new.
func findGroup(groups *[]*moveGroup, from, to *pools.Server) *moveGroup {
	for _, g := range *groups {
		if g.from == from && g.to == to {
			return g
		}
	}
	g := &moveGroup{from: from, to: to}
	*groups = append(*groups, g)
	return g
}

// migrated counts the keys of an answered MIGRATE of n keys and returns
// its error: OK moved them, NOKEY found none of them (moved already, or
// never written), an error reply is an *errMigrate, anything else failed.
func (p *pool) migrated(c *pools.Call, n int) error {
	switch {
	case c.Err != nil:
		return c.Err
	case bytes.Equal(c.Reply, okReply):
		p.stats.keysMigrated.Add(int64(n))
		p.stats.migrateRate.add(time.Now(), int64(n))
	case bytes.Equal(c.Reply, nokeyReply):
	case resp.IsError(c.Reply):
		return &errMigrate{string(bytes.TrimRight(c.Reply[1:], "\r\n"))}
	default:
		return fmt.Errorf("unexpected reply %q", clip(c.Reply))
	}
	return nil
}

var nokeyReply = []byte("+NOKEY\r\n")

// migrateFrame is the MIGRATE of keys to server to, in the pool's
// database, with its credentials:
//
//	MIGRATE host port "" db timeout REPLACE [AUTH pw | AUTH2 user pw] KEYS k...
//
// REPLACE lets a retried move overwrite what an interrupted one left on
// the target; the source deletes each key only once the target has it.
func migrateFrame(cfg *config.Pool, to *pools.Server, keys [][]byte) []byte {
	host, port, _ := net.SplitHostPort(to.Addr())
	args := [][]byte{[]byte("MIGRATE"), []byte(host), []byte(port), nil,
		[]byte(strconv.Itoa(cfg.RedisDB)), []byte(strconv.FormatInt(migrateTimeout(cfg).Milliseconds(), 10)),
		[]byte("REPLACE")}
	switch {
	case cfg.RedisAuth != "" && cfg.RedisUsername != "":
		args = append(args, []byte("AUTH2"), []byte(cfg.RedisUsername), []byte(cfg.RedisAuth))
	case cfg.RedisAuth != "":
		args = append(args, []byte("AUTH"), []byte(cfg.RedisAuth))
	}
	args = append(args, []byte("KEYS"))
	args = append(args, keys...)
	return resp.AppendCommand(nil, args...)
}

// migrateTimeout is MIGRATE's timeout: how long the old owner waits for
// the new one on each step of a move. It is half the pool's timeout, so
// that a MIGRATE that fails is answered within the pool's timeout; 5 s
// for a pool without one.
func migrateTimeout(cfg *config.Pool) time.Duration {
	if cfg.Timeout > 0 {
		return max(cfg.Timeout/2, time.Millisecond)
	}
	return 5 * time.Second
}
