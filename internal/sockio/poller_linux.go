package sockio

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Poller is a set of sockets waiting to turn readable: an epoll set that
// itself waits in Go's poller, so no thread blocks on it. A socket added
// is reported once, when it has bytes, EOF or an error (level-triggered:
// bytes that came before Add are reported at once), and stays in the set
// until Delete.
type Poller struct {
	file   *os.File // the epoll set
	raw    syscall.RawConn
	closed atomic.Bool
	// Wait's state, kept so that a wait allocates nothing.
	events []syscall.EpollEvent
	n      int
	err    error
	waitFn func(epfd uintptr) bool
	pollFn func(epfd uintptr)
	// ctl's state, under ctlMu, kept so that an epoll_ctl allocates
	// nothing (a closure passed to RawConn.Control escapes).
	ctlMu  sync.Mutex
	ctlOp  int
	ctlFD  int
	ctlEv  syscall.EpollEvent
	ctlErr error
	ctlFn  func(epfd uintptr)
}

// NewPoller makes an empty set.
func NewPoller() (*Poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil, fmt.Errorf("epoll set non-blocking: %w", err)
	}
	f := os.NewFile(uintptr(epfd), "sockio-poller")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	p := &Poller{file: f, raw: raw}
	p.waitFn = p.wait
	p.pollFn = p.poll
	p.ctlFn = p.runCtl
	return p, nil
}

// Add puts the socket fd (see FD) in the set.
func (p *Poller) Add(fd int) error {
	// One-shot: it is reported once; the owner then Deletes it.
	return p.ctl(syscall.EPOLL_CTL_ADD, fd, syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLONESHOT)
}

// Rearm reports the socket fd, already in the set and reported since,
// once more when it has bytes, EOF or an error.
func (p *Poller) Rearm(fd int) error {
	return p.ctl(syscall.EPOLL_CTL_MOD, fd, syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLONESHOT)
}

// AddHangup puts the socket fd in the set to be reported once when its
// peer closes or resets it, not when bytes come.
func (p *Poller) AddHangup(fd int) error {
	return p.ctl(syscall.EPOLL_CTL_ADD, fd, syscall.EPOLLRDHUP|syscall.EPOLLONESHOT)
}

// Delete takes the socket fd out of the set.
func (p *Poller) Delete(fd int) error {
	return p.ctl(syscall.EPOLL_CTL_DEL, fd, 0)
}

// ctl runs epoll_ctl on the set, for events (none for a delete).
func (p *Poller) ctl(op, fd int, events uint32) error {
	p.ctlMu.Lock()
	defer p.ctlMu.Unlock()
	p.ctlOp, p.ctlFD, p.ctlErr = op, fd, nil
	p.ctlEv = syscall.EpollEvent{Events: events, Fd: int32(fd)}
	if err := p.raw.Control(p.ctlFn); err != nil {
		return err
	}
	if p.ctlErr != nil {
		return fmt.Errorf("epoll_ctl: %w", p.ctlErr)
	}
	return nil
}

// runCtl is ctl's call, inside RawConn.Control (which keeps the set open
// meanwhile). Under ctlMu.
func (p *Poller) runCtl(epfd uintptr) {
	p.ctlErr = syscall.EpollCtl(int(epfd), p.ctlOp, p.ctlFD, &p.ctlEv)
}

// Wait waits until sockets in the set are reported, or until the time
// until, and puts the reported sockets in fds (not empty; at most len(fds)
// of them). It returns how many it put, os.ErrDeadlineExceeded when until
// came first, and os.ErrClosed once the set is closed. Only one goroutine
// may Wait at a time; others may Add and Delete meanwhile.
func (p *Poller) Wait(fds []int, until time.Time) (int, error) {
	p.prepare(fds)
	p.file.SetReadDeadline(until)
	return p.result(fds, p.raw.Read(p.waitFn))
}

// Poll puts in fds the sockets that are reported now, without waiting, as
// Wait does; it returns 0 when none is. Only the goroutine that Waits may
// Poll.
func (p *Poller) Poll(fds []int) (int, error) {
	p.prepare(fds)
	return p.result(fds, p.raw.Control(p.pollFn))
}

// prepare readies Wait's and Poll's state for up to len(fds) sockets.
func (p *Poller) prepare(fds []int) {
	if len(p.events) < len(fds) {
		p.events = make([]syscall.EpollEvent, len(fds))
	}
	p.events, p.n, p.err = p.events[:len(fds)], 0, nil
}

// result puts in fds the sockets the last epoll_wait reported, after the
// raw call that ran it returned err.
func (p *Poller) result(fds []int, err error) (int, error) {
	if err != nil {
		if p.closed.Load() {
			return 0, os.ErrClosed
		}
		return 0, err
	}
	if p.err != nil {
		return 0, p.err
	}
	for i, ev := range p.events[:p.n] {
		fds[i] = int(ev.Fd)
	}
	return p.n, nil
}

// poll is Poll's call, inside RawConn.Control.
func (p *Poller) poll(epfd uintptr) {
	for p.epollWait(epfd) {
	}
}

// wait is the poller callback of Wait: false means wait until readable.
func (p *Poller) wait(epfd uintptr) bool {
	if p.epollWait(epfd) {
		return false
	}
	return p.err != nil || p.n > 0
}

// epollWait takes what the set reports now into p.events (p.n of them)
// or p.err. It reports whether a signal interrupted it.
func (p *Poller) epollWait(epfd uintptr) (interrupted bool) {
	n, err := syscall.EpollWait(int(epfd), p.events, 0)
	switch {
	case err == syscall.EINTR:
		return true
	case err != nil:
		p.err = fmt.Errorf("epoll_wait: %w", err)
	default:
		p.n = n
	}
	return false
}

// Close closes the set; a Wait returns os.ErrClosed.
func (p *Poller) Close() error {
	p.closed.Store(true)
	return p.file.Close()
}

// Loops says the system has what event loops need: the Poller, and bare
// socket descriptors (Accept).
const Loops = true
