package proxy

import (
	"errors"
	"os"
	"sync"
	"time"

	"github.com/shardproxy/shardproxy/internal/sockio"
)

// parker holds a pool's parked clients: idle connections (plain or TLS)
// that gave up their goroutine (and with it its stack). Their sockets wait
// in a poller of the parker's own (an epoll set, Linux only); when one turns
// readable (bytes, EOF or an error) the parker takes it out and the pool
// gives it a goroutine again.
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

// park adds cl, whose goroutine is about to return, to the poller. It
// returns false when cl must keep its goroutine.
func (pk *parker) park(cl *client) bool {
	if cl.fd < 0 {
		return false
	}
	pk.mu.Lock()
	defer pk.mu.Unlock()
	if pk.closed {
		return false
	}
	pk.byFD[cl.fd] = cl
	// Bytes that came before Add wake it at once; it wakes once, and
	// take takes it out.
	if err := pk.poll.Add(cl.fd); err != nil {
		delete(pk.byFD, cl.fd)
		pk.p.log.Debug("park client", "err", err)
		return false
	}
	pk.p.stats.clientParked.Add(1)
	memTrim.wentIdle(pk.p.log)
	return true
}

// take removes the client parked on fd from the poller, if any. pk.mu is
// held.
func (pk *parker) take(fd int) *client {
	cl := pk.byFD[fd]
	if cl == nil {
		return nil
	}
	delete(pk.byFD, fd)
	pk.poll.Delete(fd)
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
			cl := pk.take(fd)
			pk.mu.Unlock()
			if cl != nil {
				pk.p.resume(cl)
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
		cl.closeConn()
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
		cl.closeConn()
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
		cl.closeConn()
		pk.p.forget(cl)
	}
}
