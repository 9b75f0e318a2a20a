//go:build linux

package proxy

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"time"
)

// parker holds a pool's parked clients: idle connections (plain or TLS) that gave up
// their goroutine (and with it its stack). Their sockets wait in an epoll
// set of the parker's own; when one turns readable (bytes, EOF or an error)
// the parker takes it out and the pool gives it a goroutine again. The
// epoll set itself waits in Go's poller, so no thread blocks on it.
type parker struct {
	p    *pool
	file *os.File // the epoll set
	raw  syscall.RawConn

	mu     sync.Mutex
	byFD   map[int32]*client
	closed bool
}

// newParker makes the pool's parker, or returns nil when the system cannot
// (the pool then keeps every client's goroutine).
func newParker(p *pool) *parker {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		p.log.Warn("idle clients keep their goroutines", "err", err)
		return nil
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		p.log.Warn("idle clients keep their goroutines", "err", err)
		return nil
	}
	f := os.NewFile(uintptr(epfd), "parked-clients")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		p.log.Warn("idle clients keep their goroutines", "err", err)
		return nil
	}
	return &parker{p: p, file: f, raw: raw, byFD: map[int32]*client{}}
}

// park adds cl, whose goroutine is about to return, to the epoll set. It
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
	fd := int32(cl.fd)
	pk.byFD[fd] = cl
	// Level-triggered: bytes that came before the registration wake it at
	// once. One-shot: it wakes once, and resume takes it out.
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: fd}
	if err := pk.rawCtl(syscall.EPOLL_CTL_ADD, cl.fd, &ev); err != nil {
		delete(pk.byFD, fd)
		pk.p.log.Debug("park client", "err", err)
		return false
	}
	pk.p.stats.clientParked.Add(1)
	memTrim.wentIdle(pk.p.log)
	return true
}

// take removes the client parked on fd from the set, if any. pk.mu is held.
func (pk *parker) take(fd int32) *client {
	cl := pk.byFD[fd]
	if cl == nil {
		return nil
	}
	delete(pk.byFD, fd)
	pk.rawCtl(syscall.EPOLL_CTL_DEL, int(fd), nil)
	pk.p.stats.clientParked.Add(-1)
	return cl
}

// rawCtl runs epoll_ctl on the parker's set.
func (pk *parker) rawCtl(op, fd int, ev *syscall.EpollEvent) error {
	var err error
	if cerr := pk.raw.Control(func(epfd uintptr) {
		err = syscall.EpollCtl(int(epfd), op, fd, ev)
	}); cerr != nil {
		return cerr
	}
	return err
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
	events := make([]syscall.EpollEvent, 256)
	next := time.Now().Add(every)
	for {
		n, err := pk.wait(events, next)
		if now := time.Now(); !now.Before(next) {
			pk.tick()
			next = now.Add(every)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			pk.mu.Lock()
			closing := pk.closed
			pk.mu.Unlock()
			// Closing the set fails the wait with the poller's own
			// "use of closed file", which is not os.ErrClosed.
			if !closing && !errors.Is(err, os.ErrClosed) {
				pk.p.log.Error("idle clients keep their goroutines from now on", "err", err)
				pk.giveUp()
			}
			return
		}
		for _, ev := range events[:n] {
			pk.mu.Lock()
			cl := pk.take(ev.Fd)
			pk.mu.Unlock()
			if cl != nil {
				pk.p.resume(cl)
			}
		}
	}
}

// wait returns the next ready events, waiting in Go's poller until the
// next tick at the latest.
func (pk *parker) wait(events []syscall.EpollEvent, tick time.Time) (int, error) {
	pk.file.SetReadDeadline(tick)
	var n int
	var werr error
	err := pk.raw.Read(func(epfd uintptr) bool {
		n, werr = syscall.EpollWait(int(epfd), events, 0)
		if werr == syscall.EINTR {
			n, werr = 0, nil
		}
		return n > 0 || werr != nil
	})
	if err != nil {
		return 0, err
	}
	return n, werr
}

// tick closes parked clients idle past the pool's idle timeout.
func (pk *parker) tick() {
	var expired []*client
	pk.mu.Lock()
	if idle := pk.p.routing().lim.idleTimeout; idle > 0 {
		now := time.Now()
		for fd, cl := range pk.byFD {
			if now.Sub(cl.idleSince) >= idle-deadlineSlack(idle) {
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

// giveUp stops parking, after the epoll set failed: every parked client
// gets its goroutine back.
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

// close closes every parked client and the epoll set; run then returns.
func (pk *parker) close() {
	pk.mu.Lock()
	pk.closed = true
	for fd, cl := range pk.byFD {
		pk.take(fd)
		cl.closeConn()
	}
	pk.mu.Unlock()
	pk.file.Close()
}

// clientFD returns the socket of a plain connection, or -1.
func clientFD(raw syscall.RawConn) int {
	fd := -1
	if raw != nil {
		raw.Control(func(s uintptr) { fd = int(s) })
	}
	return fd
}
