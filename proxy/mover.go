package proxy

import (
	"bytes"
	"time"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/pools"
)

// mover is a pool's background mover during a migration: it walks each
// old owner with SCAN and moves the keys whose owner changed with MIGRATE,
// within the pool's migrate_rate. It speaks to the old owners on
// connections of its own (made with the pool's dial and handshake, and no
// timeout), so that moving a big key never delays a client's request nor
// times out. The pool starts one for each new migration state (setMover)
// and stops it on close and when a reload swaps the routing. A migration
// with a start_at has its mover wait for it, then moverSettle more.
type mover struct {
	p     *pool
	mig   *migration
	start time.Time       // the migration's start_at; zero: at once
	own   []*pools.Server // the mover's own server per old owner (routing.fromRing), for SCAN
	conns moveConns       // the mover's connections for its moves
	stop  chan struct{}
	done  chan struct{}
}

// scanCount is the COUNT of each SCAN, and at most the keys of one MIGRATE.
const scanCount = 100

// moverSettle is how long after start_at the mover starts its scans. A
// request a proxy routed by the old placement just before start_at (by
// its clock) can still reach an old owner after another proxy has moved
// its key; every proxy runs a mover, so the scans of the proxy whose
// clock is the slowest begin moverSettle after the last such request was
// routed, and carry its write over to the new owner, as long as requests
// reach their server within moverSettle.
const moverSettle = 2 * time.Second

// moverRetry is how long the mover waits before it scans again an old
// owner whose scan met an error.
const moverRetry = time.Second

// setMover starts the mover of the pool's current migration, stopping the
// one of an earlier migration; without a migration it only stops.
func (p *pool) setMover() {
	rt := p.routing()
	p.moverMu.Lock()
	defer p.moverMu.Unlock()
	if p.mover != nil && p.mover.mig == rt.mig {
		return
	}
	if p.mover != nil {
		p.mover.halt(moverHaltWait)
		p.retireMigration(p.mover.mig)
		p.mover = nil
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if rt.mig == nil {
		return
	}
	if closed {
		rt.mig.close()
		return
	}
	roots, err := rt.cfg.ServerRoots()
	if err != nil {
		p.log.Error("migration: the mover cannot start", "err", err)
		rt.mig.close()
		return
	}
	mv := &mover{p: p, mig: rt.mig, start: rt.startAt, stop: make(chan struct{}), done: make(chan struct{})}
	for _, line := range rt.cfg.MigrateFrom.Servers {
		opt := p.serverOptions(rt.cfg, line, roots)
		opt.Connections, opt.Timeout, opt.AutoEject, opt.FailFast = 1, 0, false, false
		mv.own = append(mv.own, pools.NewServer(opt))
	}
	p.mover = mv
	go mv.run()
}

// stopMover stops the pool's mover, if it runs, and every move of its
// migration and of those it replaced.
func (p *pool) stopMover() {
	p.moverMu.Lock()
	defer p.moverMu.Unlock()
	if p.mover != nil {
		p.mover.halt(moverHaltWait)
		p.mover.mig.close()
		p.mover = nil
	}
	for _, m := range p.retired {
		m.close()
	}
	p.retired = nil
}

// retireMigration lets the moves on access of a migration that a reload replaced
// end (a client holding the old routing waits for them), closing their
// connections as they do; stopMover closes those still in use.
func (p *pool) retireMigration(m *migration) {
	live := p.retired[:0]
	for _, r := range p.retired {
		if r.conns.retire() {
			live = append(live, r)
		}
	}
	p.retired = live
	if m.conns.retire() {
		p.retired = append(p.retired, m)
	}
}

// moverHaltWait bounds how long stopping a mover waits for its goroutine:
// closing its connections fails whatever it waits for on a server, so it
// ends at once, but neither a reload nor Close waits on a server.
const moverHaltWait = time.Second

// halt stops the mover and waits at most d for it to end: closing its
// connections fails what it waits for on a server.
func (mv *mover) halt(d time.Duration) {
	close(mv.stop)
	mv.conns.close()
	closeAll(mv.own)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-mv.done:
	case <-t.C:
		mv.p.log.Warn("migration: the mover has not stopped yet; it ends on its own", "waited", d)
	}
}

// run scans every old owner until each has been scanned through without
// an error, then marks the migration complete.
func (mv *mover) run() {
	defer close(mv.done)
	defer func() {
		for _, s := range mv.own {
			s.Close()
		}
	}()
	if !mv.waitStart() {
		return
	}
	log := mv.p.log
	log.Info("migration: moving keys", "old_owners", len(mv.own))
	start := time.Now()
	left := make([]int, len(mv.own))
	for j := range left {
		left[j] = j
	}
	for len(left) > 0 {
		var again []int
		for _, j := range left {
			if !mv.scan(j) {
				again = append(again, j)
				continue
			}
			mv.mig.pending.Add(-1)
		}
		if left = again; len(left) > 0 && !mv.sleep(moverRetry) {
			return
		}
	}
	mv.mig.complete.Store(true)
	log.Info("migration complete: remove migrate_from and reload", "took", time.Since(start).Round(time.Millisecond),
		"keys_migrated", mv.p.stats.keysMigrated.Load())
}

// scan walks old owner j once and moves the keys it holds whose owner
// changed. It reports whether the walk ended with nothing failed.
func (mv *mover) scan(j int) bool {
	cursor := []byte("0")
	ok := true
	for {
		call := newWaitCall(resp.AppendCommand(nil, []byte("SCAN"), cursor, []byte("COUNT"), []byte("100")))
		call.send(mv.own[j].Conn(0))
		<-call.done
		if mv.stopped() {
			return false
		}
		next, keys, err := scanReply(&call.Call)
		if err != nil {
			mv.p.stats.migrationErrors.Add(1)
			mv.p.log.Warn("migration: SCAN failed", "server", mv.own[j].Name(), "err", err)
			return false
		}
		if !mv.move(j, keys) {
			ok = false
		}
		if mv.stopped() {
			return false
		}
		if string(next) == "0" {
			return ok
		}
		cursor = next
	}
}

// move moves the keys of old owner j whose owner changed, in MIGRATEs of
// at most migrate_rate keys, each followed by a pause that keeps the rate.
func (mv *mover) move(j int, keys [][]byte) bool {
	rt := mv.p.routing()
	if rt.mig != mv.mig {
		return false // a reload ended this migration: the next mover goes on
	}
	var groups []*moveGroup
	for _, k := range keys {
		if rt.from.Pick(k) != j {
			continue // not placed here before: moved here, or staying
		}
		i := rt.locate(k)
		if i < 0 {
			return false
		}
		if to := rt.ring[i]; to != rt.fromRing[j] {
			g := findGroup(&groups, rt.fromRing[j], to)
			g.keys = append(g.keys, k)
		}
	}
	rate := rt.cfg.MigrateRate
	if rate <= 0 {
		rate = config.DefaultMigrateRate
	}
	ok := true
	for _, g := range groups {
		for len(g.keys) > 0 {
			n := min(len(g.keys), rate, scanCount)
			began := time.Now()
			err := mv.mig.move(mv.p, rt.cfg, &mv.conns, g.from, g.to, g.keys[:n], true)
			if mv.stopped() {
				return false
			}
			if err != nil {
				mv.p.log.Warn("migration: a move failed", "from", g.from.Name(), "to", g.to.Name(), "keys", n, "err", err)
				ok = false
			}
			g.keys = g.keys[n:]
			if !mv.sleep(time.Duration(n)*time.Second/time.Duration(rate) - time.Since(began)) {
				return false
			}
		}
	}
	return ok
}

// waitStart waits for the migration's start_at, marks it started, and
// waits moverSettle more. It reports whether the mover may go on.
func (mv *mover) waitStart() bool {
	if mv.start.IsZero() {
		return true
	}
	log := mv.p.log
	if time.Now().Before(mv.start) {
		log.Info("migration: routing by migrate_from's placement until start_at", "start_at", mv.start.Format(time.RFC3339))
	}
	if !mv.sleepUntil(mv.start) {
		return false
	}
	mv.mig.started.Store(true) // if no batch has yet
	log.Info("migration: start_at reached: routing by the new placement; the mover scans after a pause",
		"start_at", mv.start.Format(time.RFC3339), "pause", moverSettle)
	return mv.sleepUntil(mv.start.Add(moverSettle))
}

// sleepUntil waits until the wall clock reads at, in steps of at most a
// second so that a clock set meanwhile is followed, or until the mover
// stops: it reports whether it may go on.
func (mv *mover) sleepUntil(at time.Time) bool {
	for d := time.Until(at); d > 0; d = time.Until(at) {
		if !mv.sleep(min(d, time.Second)) {
			return false
		}
	}
	return !mv.stopped()
}

// sleep waits d, or until the mover stops: it reports whether it may go on.
func (mv *mover) sleep(d time.Duration) bool {
	if d <= 0 {
		return !mv.stopped()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-mv.stop:
		return false
	case <-t.C:
		return true
	}
}

func (mv *mover) stopped() bool {
	select {
	case <-mv.stop:
		return true
	default:
		return false
	}
}

// scanReply reads a SCAN reply: the next cursor and the keys.
func scanReply(c *pools.Call) (cursor []byte, keys [][]byte, err error) {
	if c.Err != nil {
		return nil, nil, c.Err
	}
	b := c.Reply
	bad := func() ([]byte, [][]byte, error) { return nil, nil, errBadScan(b) }
	n, h, err := resp.ReadArrayHeader(b)
	if err != nil || n != 2 {
		return bad()
	}
	b = b[h:]
	cursor, m := bulkAt(b)
	if m == 0 {
		return bad()
	}
	b = b[m:]
	count, h, err := resp.ReadArrayHeader(b)
	if err != nil {
		return bad()
	}
	b = b[h:]
	for range count {
		k, m := bulkAt(b)
		if m == 0 {
			return bad()
		}
		keys = append(keys, k)
		b = b[m:]
	}
	return cursor, keys, nil
}

// bulkAt returns the bulk string that b starts with and its length in b,
// or 0 when b does not start with a whole one.
func bulkAt(b []byte) ([]byte, int) {
	n := bulkNeed(b)
	hdr := bytes.IndexByte(b, '\n') + 1
	if n == 0 || n > len(b) || hdr == 0 || hdr > n-2 {
		return nil, 0
	}
	return b[hdr : n-2], n
}

type errBadScan []byte

func (e errBadScan) Error() string { return "unexpected SCAN reply: " + clip(e) }
