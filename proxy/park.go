package proxy

import (
	"errors"
	"os"
	"time"

	"github.com/shardproxy/shardproxy/internal/memtrim"
	"github.com/shardproxy/shardproxy/internal/sockio"
	"github.com/shardproxy/shardproxy/pools"
)

// parker holds parked clients of a pool: idle connections (plain or TLS)
// that gave up their goroutine (and with it its stack), and plain clients
// between batches. Their sockets wait in a poller of the parker's own (an
// epoll set, Linux only); when one turns readable (bytes, EOF or an error)
// the parker takes it out and serves it on its own goroutine, its event
// loop (loop.go), or gives it a goroutine again. A pool has one parker per
// processor the process may use; a client's is parkerOf.
type parker struct {
	p   *pool
	set *sockio.Waiting[*client] // the parked clients, by socket
	// dirty are the server connections the loop's turn queued requests
	// on, to be written when the turn ends (run's goroutine only).
	dirty []*pools.Conn
}

// newParker makes the pool's parker, or returns nil when the system cannot
// (the pool then keeps every client's goroutine).
func newParker(p *pool) *parker {
	w, err := sockio.NewWaiting[*client]()
	if err != nil {
		if !errors.Is(err, errors.ErrUnsupported) {
			p.log.Warn("idle clients keep their goroutines", "err", err)
		}
		return nil
	}
	return &parker{p: p, set: w}
}

// park adds cl, whose goroutine is about to return after
// client_park_after of silence, to the poller. It returns false when cl
// must keep its goroutine.
func (pk *parker) park(cl *client) bool {
	if !pk.add(cl) {
		return false
	}
	memtrim.Process.WentIdle(pk.p.log)
	return true
}

// add makes cl, idle now, wait in the set: a client whose goroutine is
// about to return, or one an event loop served. It returns false when cl
// must have a goroutine.
func (pk *parker) add(cl *client) bool {
	if cl.fd < 0 {
		return false
	}
	cl.idleSince = time.Now()
	// Everything of cl is written before Put: once in the set, cl
	// belongs to whoever takes it out (Ready or TakeAll, reported once).
	armed := cl.polled
	cl.polled = true
	pk.p.stats.clientParked.Add(1)
	if err := pk.set.Put(cl.fd, cl, armed); err != nil {
		cl.polled = armed
		pk.p.stats.clientParked.Add(-1)
		if !errors.Is(err, sockio.ErrSetClosed) {
			pk.p.log.Debug("park client", "err", err)
		}
		return false
	}
	return true
}

// remove takes the socket of cl, which is not parked, out of the set.
func (pk *parker) remove(cl *client) {
	pk.set.Remove(cl.fd)
	cl.polled = false
}

// takeAll takes the parked clients for which pick (nil: every one) is true
// out of the set, closing it for good when closing.
func (pk *parker) takeAll(pick func(*client) bool, closing bool) []*client {
	out := pk.set.TakeAll(pick, closing)
	for _, cl := range out {
		cl.polled = false
	}
	pk.p.stats.clientParked.Add(-int64(len(out)))
	return out
}

// run hands readable parked clients back to the pool until the parker is
// closed. It ticks every second (every tenth of the pool's idle timeout
// when that is shorter) to close parked clients past the idle timeout.
func (pk *parker) run() {
	defer pk.p.wg.Done()
	every := time.Second
	if idle := pk.p.routing().lim.idleTimeout; idle > 0 {
		every = deadlineSlack(idle)
	}
	fds := make([]int, 256)
	next := time.Now().Add(every)
	for {
		n, err := pk.set.Next(fds, next)
		if now := time.Now(); !now.Before(next) {
			pk.tick()
			next = now.Add(every)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				pk.p.log.Error("idle clients keep their goroutines from now on", "err", err)
				pk.giveUp()
			}
			return
		}
		pk.serve(fds[:n])
		// Clients that turned readable meanwhile are served before the
		// servers are written: their requests go in the same writes.
		for range turnPolls {
			if len(pk.dirty) == 0 {
				break
			}
			m, err := pk.set.Poll(fds)
			if err != nil || m == 0 {
				break
			}
			pk.serve(fds[:m])
		}
		pk.flush()
	}
}

// turnPolls bounds how many times a loop's turn looks for more readable
// clients before it writes the servers: the first requests of the turn
// wait for the others at most that many rounds of reads.
const turnPolls = 4

// serve serves the clients of the sockets fds that are still in the set.
func (pk *parker) serve(fds []int) {
	for _, fd := range fds {
		if cl, ok := pk.set.Ready(fd); ok {
			pk.p.stats.clientParked.Add(-1)
			cl.serveReady(pk)
		}
	}
}

// flush writes the server connections of the loop's turn (dirty): one
// write each carries the requests of every client the turn served (a
// connection listed again has nothing left to write).
func (pk *parker) flush() {
	for i, c := range pk.dirty {
		c.FlushAsync()
		pk.dirty[i] = nil
	}
	pk.dirty = pk.dirty[:0]
}

// tick closes parked clients idle past the pool's idle timeout.
func (pk *parker) tick() {
	idle := pk.p.routing().lim.idleTimeout
	if idle <= 0 {
		return
	}
	now := time.Now()
	expired := pk.takeAll(func(cl *client) bool {
		return now.Sub(cl.idleSince) >= idle-deadlineSlack(idle) && cl.sub.Load() == nil
	}, false)
	for _, cl := range expired {
		cl.closeSocket()
		pk.p.stats.clientErr.Add(1) // as an idle timeout of a client with a goroutine
		pk.p.forget(cl)
	}
}

// giveUp stops parking, after the poller failed: every parked client gets
// its goroutine back.
func (pk *parker) giveUp() {
	for _, cl := range pk.takeAll(nil, true) {
		pk.p.resume(cl)
	}
}

// close closes every parked client and the poller; run then returns.
func (pk *parker) close() {
	out := pk.takeAll(nil, true)
	for _, cl := range out {
		cl.closeSocket()
	}
	pk.set.Close()
	for _, cl := range out {
		cl.endSession(false)
		cl.endSubscriptions()
	}
}

// evict closes and forgets every parked client, leaving the parker
// running: the pool is leaving, and an idle client has nothing in flight.
func (pk *parker) evict() {
	for _, cl := range pk.takeAll(nil, false) {
		cl.closeSocket()
		pk.p.forget(cl)
	}
}
