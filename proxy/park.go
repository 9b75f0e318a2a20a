package proxy

import (
	"errors"
	"os"
	"sync"
	"time"

	"github.com/shardproxy/shardproxy/internal/sockio"
)

// parker holds parked clients of a pool: idle connections (plain or TLS)
// that gave up their goroutine (and with it its stack), and plain clients
// between batches. Their sockets wait in a poller of the parker's own (an
// epoll set, Linux only); when one turns readable (bytes, EOF or an error)
// the parker takes it out and serves it on its own goroutine, its event
// loop (loop.go), or gives it a goroutine again. A pool has one parker per
// processor the process may use; a client's is parkerOf.
type parker struct {
	p    *pool
	poll *sockio.Poller

	mu     sync.Mutex
	byFD   map[int]*client
	closed bool
}

// newParker makes the pool's parker, or returns nil when the system cannot
// (the pool then keeps every client's goroutine).
func newParker(p *pool) *parker {
	poll, err := sockio.NewPoller()
	if err != nil {
		if !errors.Is(err, errors.ErrUnsupported) {
			p.log.Warn("idle clients keep their goroutines", "err", err)
		}
		return nil
	}
	return &parker{p: p, poll: poll, byFD: map[int]*client{}}
}

// park adds cl, whose goroutine is about to return after
// client_park_after of silence, to the poller. It returns false when cl
// must keep its goroutine.
func (pk *parker) park(cl *client) bool {
	if !pk.wait(cl) {
		return false
	}
	memTrim.wentIdle(pk.p.log)
	return true
}

// wait adds cl, idle now, to the poller: a client whose goroutine is
// about to return, or one an event loop served. It returns false when cl
// must have a goroutine.
func (pk *parker) wait(cl *client) bool {
	if cl.fd < 0 {
		return false
	}
	cl.idleSince = time.Now()
	pk.mu.Lock()
	defer pk.mu.Unlock()
	if pk.closed {
		return false
	}
	pk.byFD[cl.fd] = cl
	// Bytes that came before it are reported at once; it is reported
	// once (one-shot), and takeReady or take takes it out.
	var err error
	if cl.polled {
		err = pk.poll.Rearm(cl.fd)
	} else {
		err = pk.poll.Add(cl.fd)
	}
	if err != nil {
		delete(pk.byFD, cl.fd)
		pk.p.log.Debug("park client", "err", err)
		return false
	}
	cl.polled = true
	pk.p.stats.clientParked.Add(1)
	return true
}

// take removes the client parked on fd from the poller, if any. pk.mu is
// held.
func (pk *parker) take(fd int) *client {
	cl := pk.takeReady(fd)
	if cl != nil {
		pk.poll.Delete(fd)
		cl.polled = false
	}
	return cl
}

// remove takes the socket of cl, which is not parked, out of the set.
func (pk *parker) remove(cl *client) {
	pk.mu.Lock()
	pk.poll.Delete(cl.fd)
	cl.polled = false
	pk.mu.Unlock()
}

// takeReady removes the client parked on fd, which the poller reported,
// leaving its socket in the set, where the report disarmed it. pk.mu is
// held.
func (pk *parker) takeReady(fd int) *client {
	cl := pk.byFD[fd]
	if cl == nil {
		return nil
	}
	delete(pk.byFD, fd)
	pk.p.stats.clientParked.Add(-1)
	return cl
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
		n, err := pk.poll.Wait(fds, next)
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
		for _, fd := range fds[:n] {
			pk.mu.Lock()
			cl := pk.takeReady(fd)
			pk.mu.Unlock()
			if cl != nil {
				cl.serveReady()
			}
		}
	}
}

// tick closes parked clients idle past the pool's idle timeout.
func (pk *parker) tick() {
	var expired []*client
	pk.mu.Lock()
	if idle := pk.p.routing().lim.idleTimeout; idle > 0 {
		now := time.Now()
		for fd, cl := range pk.byFD {
			if now.Sub(cl.idleSince) >= idle-deadlineSlack(idle) && cl.sub.Load() == nil {
				expired = append(expired, pk.take(fd))
			}
		}
	}
	pk.mu.Unlock()
	for _, cl := range expired {
		cl.closeSocket()
		pk.p.stats.clientErr.Add(1) // as an idle timeout of a client with a goroutine
		pk.p.forget(cl)
	}
}

// giveUp stops parking, after the poller failed: every parked client gets
// its goroutine back.
func (pk *parker) giveUp() {
	var back []*client
	pk.mu.Lock()
	pk.closed = true
	for fd := range pk.byFD {
		back = append(back, pk.take(fd))
	}
	pk.mu.Unlock()
	for _, cl := range back {
		pk.p.resume(cl)
	}
}

// close closes every parked client and the poller; run then returns.
func (pk *parker) close() {
	pk.mu.Lock()
	pk.closed = true
	var out []*client
	for fd, cl := range pk.byFD {
		pk.take(fd)
		cl.closeSocket()
		out = append(out, cl)
	}
	pk.mu.Unlock()
	pk.poll.Close()
	for _, cl := range out {
		cl.endSession(false)
		cl.endSubscriptions()
	}
}

// evict closes and forgets every parked client, leaving the parker
// running: the pool is leaving, and an idle client has nothing in flight.
func (pk *parker) evict() {
	var out []*client
	pk.mu.Lock()
	for fd := range pk.byFD {
		out = append(out, pk.take(fd))
	}
	pk.mu.Unlock()
	for _, cl := range out {
		cl.closeSocket()
		pk.p.forget(cl)
	}
}
