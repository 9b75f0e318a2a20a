package sockio

import (
	"errors"
	"sync"
	"time"
)

// ErrSetClosed is Put's error once the set is closed.
var ErrSetClosed = errors.New("sockio: set closed")

// Waiting is a Poller whose waiting sockets each carry a value, their
// owner while they wait (an event loop's idle clients): Put adds a socket
// with its value, and the value comes back once, from Ready when the set
// reports the socket or from TakeAll. A socket stays in the epoll set
// between reports (re-armed by the next Put) until TakeAll or Remove
// takes it out. Not on systems without a Poller (NewWaiting fails there).
type Waiting[T any] struct {
	poll *Poller

	mu     sync.Mutex
	byFD   map[int]T // the waiting sockets
	closed bool
}

// NewWaiting makes an empty set.
func NewWaiting[T any]() (*Waiting[T], error) {
	p, err := NewPoller()
	if err != nil {
		return nil, err
	}
	return &Waiting[T]{poll: p, byFD: map[int]T{}}, nil
}

// Put makes socket fd wait with v, reported once when it has bytes, EOF or
// an error (bytes that came before are reported at once). armed says fd
// is in the epoll set already (put and reported since, not taken out).
// It fails with ErrSetClosed after TakeAll closed the set.
func (w *Waiting[T]) Put(fd int, v T, armed bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrSetClosed
	}
	w.byFD[fd] = v
	var err error
	if armed {
		err = w.poll.Rearm(fd)
	} else {
		err = w.poll.Add(fd)
	}
	if err != nil {
		delete(w.byFD, fd)
	}
	return err
}

// Ready takes the value of socket fd, which Next reported: its socket
// stays in the epoll set, disarmed. ok is false when fd no longer waits
// (TakeAll took it meanwhile).
func (w *Waiting[T]) Ready(fd int) (v T, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if v, ok = w.byFD[fd]; ok {
		delete(w.byFD, fd)
	}
	return v, ok
}

// Remove takes socket fd, which does not wait, out of the epoll set.
func (w *Waiting[T]) Remove(fd int) {
	w.mu.Lock()
	w.poll.Delete(fd)
	w.mu.Unlock()
}

// TakeAll takes every waiting socket for whose value pick (nil: every
// one) is true out of the set and returns their values. closing closes
// the set first: Put fails from then on.
func (w *Waiting[T]) TakeAll(pick func(T) bool, closing bool) []T {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = w.closed || closing
	var out []T
	for fd, v := range w.byFD {
		if pick == nil || pick(v) {
			delete(w.byFD, fd)
			w.poll.Delete(fd)
			out = append(out, v)
		}
	}
	return out
}

// Next waits as Poller.Wait does. Only one goroutine may call it at a
// time.
func (w *Waiting[T]) Next(fds []int, until time.Time) (int, error) { return w.poll.Wait(fds, until) }

// Poll is Next without waiting (Poller.Poll). Only the goroutine that
// calls Next may call it.
func (w *Waiting[T]) Poll(fds []int) (int, error) { return w.poll.Poll(fds) }

// Close closes the epoll set: Next returns os.ErrClosed.
func (w *Waiting[T]) Close() error { return w.poll.Close() }
