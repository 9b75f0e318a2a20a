package migration

import (
	"sync"

	"github.com/shardproxy/shardproxy/pools"
)

// moveConns are the connections a migration moves keys on (MIGRATE, and
// DUMP, PTTL, RESTORE, DEL through the proxy), on access as in the
// background: apart from the clients' shared connections and without the
// pool's timeout, so that a big key neither delays a client's request nor
// times out, and a failed move closes no connection a client waits on.
// Each move takes a connection of its own to each server it speaks to
// (get) and gives it back (put): a big key's move makes no other move wait
// either. A few idle ones per server are kept for the next moves; close
// closes them all, those in use too, which fails what they wait for: it
// stops the moves of a migration that a reload replaced or a closing pool
// ends, whatever a server does.
type moveConns struct {
	mu     sync.Mutex
	closed bool
	// retired says the migration was replaced (a reload): its moves in
	// flight go on, each connection closing when given back.
	retired bool
	// idle are the connections ready for a move, per server of the
	// routing (the clients' pools.Server); busy are those in use.
	idle map[*pools.Server][]*pools.Server
	busy map[*pools.Server]bool
}

// moveConnsIdle is how many idle connections per server a migration keeps.
const moveConnsIdle = 4

// get returns a connection of its own to the server of s, at s's address
// now (a failover moves s): a pools.Server with one connection, without
// timeout. It fails once the migration's connections are closed.
func (mc *moveConns) get(s *pools.Server) (*pools.Server, error) {
	var stale []*pools.Server
	defer func() { closeAll(stale) }()
	mc.mu.Lock()
	defer mc.mu.Unlock()
	if mc.closed {
		return nil, pools.ErrClosed
	}
	if mc.busy == nil {
		mc.idle, mc.busy = map[*pools.Server][]*pools.Server{}, map[*pools.Server]bool{}
	}
	var d *pools.Server
	for idle := mc.idle[s]; len(idle) > 0 && d == nil; {
		d, idle = idle[len(idle)-1], idle[:len(idle)-1]
		mc.idle[s] = idle
		if d.Addr() != s.Addr() {
			stale, d = append(stale, d), nil
		}
	}
	if d == nil {
		d = s.Dedicated()
	}
	mc.busy[d] = true
	return d, nil
}

// put gives back a connection that get returned for s.
func (mc *moveConns) put(s, d *pools.Server) {
	mc.mu.Lock()
	if !mc.busy[d] {
		mc.mu.Unlock()
		return // closed meanwhile
	}
	delete(mc.busy, d)
	if !mc.retired && len(mc.idle[s]) < moveConnsIdle && d.Addr() == s.Addr() {
		mc.idle[s] = append(mc.idle[s], d)
		mc.mu.Unlock()
		return
	}
	mc.mu.Unlock()
	d.Close()
}

// retire closes the idle connections, and each one in use once it is
// given back; it reports whether some are in use.
func (mc *moveConns) retire() (busy bool) {
	mc.mu.Lock()
	mc.retired = true
	var idle []*pools.Server
	for _, ds := range mc.idle {
		idle = append(idle, ds...)
	}
	clear(mc.idle)
	busy = len(mc.busy) > 0
	mc.mu.Unlock()
	closeAll(idle)
	return busy
}

// close closes every connection, idle or in use: what a move waits for on
// them fails at once, and a later get fails.
func (mc *moveConns) close() {
	mc.mu.Lock()
	mc.closed, mc.retired = true, true
	var all []*pools.Server
	for d := range mc.busy {
		all = append(all, d)
	}
	for _, idle := range mc.idle {
		all = append(all, idle...)
	}
	mc.busy, mc.idle = nil, nil
	mc.mu.Unlock()
	closeAll(all)
}

// closeAll closes servers, each in its own goroutine, and waits for them.
func closeAll(servers []*pools.Server) {
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Close()
		}()
	}
	wg.Wait()
}
