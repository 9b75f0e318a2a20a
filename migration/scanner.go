package migration

import (
	"time"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/pools"
)

// scanner is the background mover of one migration: it walks each old
// owner with SCAN and moves the keys whose owner changed with MIGRATE,
// within the pool's migrate_rate. It speaks to the old owners on
// connections of its own (made with the pool's dial and handshake, and no
// timeout), so that moving a big key never delays a client's request nor
// times out. The Mover starts one for each new migration state (Set) and
// stops it on close and when a reload swaps the routing. A migration
// with a start_at has its scanner wait for it, then moverSettle more.
type scanner struct {
	mv    *Mover
	mig   *State
	own   []*pools.Server // the scanner's own server per old owner (State.from), for SCAN
	conns moveConns       // the scanner's connections for its moves
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

// halt stops the scanner and waits at most d for it to end: closing its
// connections fails what it waits for on a server.
func (sc *scanner) halt(d time.Duration) {
	close(sc.stop)
	sc.conns.close()
	closeAll(sc.own)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-sc.done:
	case <-t.C:
		sc.mv.log.Warn("migration: the mover has not stopped yet; it ends on its own", "waited", d)
	}
}

// run scans every old owner until each has been scanned through without
// an error, then marks the migration complete.
func (sc *scanner) run() {
	defer close(sc.done)
	defer func() {
		for _, s := range sc.own {
			s.Close()
		}
	}()
	if !sc.waitStart() {
		return
	}
	log := sc.mv.log
	log.Info("migration: moving keys", "old_owners", len(sc.own))
	start := time.Now()
	left := make([]int, len(sc.own))
	for j := range left {
		left[j] = j
	}
	for len(left) > 0 {
		var again []int
		for _, j := range left {
			if !sc.scan(j) {
				again = append(again, j)
				continue
			}
			sc.mig.pending.Add(-1)
		}
		if left = again; len(left) > 0 && !sc.sleep(moverRetry) {
			return
		}
	}
	sc.mig.complete.Store(true)
	log.Info("migration complete: remove migrate_from and reload", "took", time.Since(start).Round(time.Millisecond),
		"keys_migrated", sc.mv.pool.KeysMigrated())
}

// scan walks old owner j once and moves the keys it holds whose owner
// changed. It reports whether the walk ended with nothing failed.
func (sc *scanner) scan(j int) bool {
	cursor := []byte("0")
	ok := true
	for {
		call := newWaitCall(resp.AppendCommand(nil, []byte("SCAN"), cursor, []byte("COUNT"), []byte("100")))
		call.send(sc.own[j].Conn(0))
		<-call.done
		if sc.stopped() {
			return false
		}
		next, keys, err := scanReply(&call.Call)
		if err != nil {
			sc.mv.pool.Failed()
			sc.mv.log.Warn("migration: SCAN failed", "server", sc.own[j].Name(), "err", err)
			return false
		}
		if !sc.move(j, keys) {
			ok = false
		}
		if sc.stopped() {
			return false
		}
		if string(next) == "0" {
			return ok
		}
		cursor = next
	}
}

// move moves the keys of old owner j whose owner changed (into a cluster,
// every key of it), in MIGRATEs of at most migrate_rate keys, each
// followed by a pause that keeps the rate. It asks the pool's routing now
// where each key was and is.
func (sc *scanner) move(j int, keys [][]byte) bool {
	place := sc.mv.pool.Placement(sc.mig)
	if place == nil {
		return false // a reload ended this migration: the next mover goes on
	}
	m := sc.mig
	var groups []*moveGroup
	for _, k := range keys {
		before, now := place.Owners(k)
		switch {
		case m.every:
			before = m.from[j] // wherever migrate_from places it
		case before != m.from[j]:
			continue // not placed here before: moved here, or staying
		}
		if now == nil {
			return false
		}
		if now != before {
			g := findGroup(&groups, before, now)
			g.keys = append(g.keys, k)
		}
	}
	rate := m.cfg.MigrateRate
	if rate <= 0 {
		rate = config.DefaultMigrateRate
	}
	ok := true
	for _, g := range groups {
		for len(g.keys) > 0 {
			n := min(len(g.keys), rate, scanCount)
			began := time.Now()
			part := &moveGroup{from: g.from, to: g.to, keys: g.keys[:n]}
			m.moveFollowing(sc.mv, &sc.conns, part, true, func(part *moveGroup, err error) {
				if err != nil {
					sc.mv.log.Warn("migration: a move failed", "from", part.from.Name(), "to", part.to.Name(),
						"keys", len(part.keys), "err", err)
					ok = false
				}
			})
			if sc.stopped() {
				return false
			}
			g.keys = g.keys[n:]
			if !sc.sleep(time.Duration(n)*time.Second/time.Duration(rate) - time.Since(began)) {
				return false
			}
		}
	}
	return ok
}

// waitStart waits for the migration's start_at, marks it started, and
// waits moverSettle more. It reports whether the scanner may go on.
func (sc *scanner) waitStart() bool {
	start := sc.mig.start
	if start.IsZero() {
		return true
	}
	log := sc.mv.log
	if time.Now().Before(start) {
		log.Info("migration: routing by migrate_from's placement until start_at", "start_at", start.Format(time.RFC3339))
	}
	if !sc.sleepUntil(start) {
		return false
	}
	sc.mig.started.Store(true) // if no batch has yet
	log.Info("migration: start_at reached: routing by the new placement; the mover scans after a pause",
		"start_at", start.Format(time.RFC3339), "pause", moverSettle)
	return sc.sleepUntil(start.Add(moverSettle))
}

// sleepUntil waits until the wall clock reads at, in steps of at most a
// second so that a clock set meanwhile is followed, or until the scanner
// stops: it reports whether it may go on.
func (sc *scanner) sleepUntil(at time.Time) bool {
	for d := time.Until(at); d > 0; d = time.Until(at) {
		if !sc.sleep(min(d, time.Second)) {
			return false
		}
	}
	return !sc.stopped()
}

// sleep waits d, or until the scanner stops: it reports whether it may go
// on.
func (sc *scanner) sleep(d time.Duration) bool {
	if d <= 0 {
		return !sc.stopped()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-sc.stop:
		return false
	case <-t.C:
		return true
	}
}

func (sc *scanner) stopped() bool {
	select {
	case <-sc.stop:
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
	v, n, err := resp.ParseValue(c.Reply)
	if err != nil || n == 0 {
		return nil, nil, errBadScan(c.Reply)
	}
	if cursor, keys, err = resp.ParseScan(v); err != nil {
		return nil, nil, errBadScan(c.Reply)
	}
	return cursor, keys, nil
}

type errBadScan []byte

func (e errBadScan) Error() string { return "unexpected SCAN reply: " + resp.Clip(e) }
