package sockio

import (
	"sync"
	"time"
)

// Hangups tells the owners of sockets that wait for something else (a
// client blocked in a command) when their peer hangs up: one epoll set,
// and one goroutine waiting on it while any socket is watched. Where
// there is no epoll (not Linux) a hang-up is never told. The zero value
// is ready to use.
type Hangups struct {
	mu      sync.Mutex
	poll    *Poller // nil until first needed, or when it cannot be had
	failed  bool    // the set could not be made: Watch tells nothing
	closed  bool
	waiting map[int]chan struct{} // by socket
	wg      sync.WaitGroup
}

// Watch returns a channel closed when the peer of socket fd closes or
// resets it, and the function that stops watching (called before fd is
// closed).
func (h *Hangups) Watch(fd int) (<-chan struct{}, func()) {
	hup := make(chan struct{})
	h.mu.Lock()
	defer h.mu.Unlock()
	if fd < 0 || h.closed || !h.start() {
		return hup, func() {}
	}
	if err := h.poll.AddHangup(fd); err != nil {
		return hup, func() {}
	}
	h.waiting[fd] = hup
	return hup, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.waiting[fd] == hup {
			delete(h.waiting, fd)
		}
		if h.poll != nil {
			h.poll.Delete(fd)
		}
	}
}

// start makes the epoll set and its goroutine, once. Under mu.
func (h *Hangups) start() bool {
	if h.poll != nil || h.failed {
		return h.poll != nil
	}
	p, err := NewPoller()
	if err != nil {
		h.failed = true
		return false
	}
	h.poll, h.waiting = p, map[int]chan struct{}{}
	h.wg.Add(1)
	go h.loop(p)
	return true
}

// loop tells the watchers of the sockets reported, until the set closes.
func (h *Hangups) loop(p *Poller) {
	defer h.wg.Done()
	fds := make([]int, 64)
	for {
		n, err := p.Wait(fds, time.Time{})
		if err != nil {
			return
		}
		h.mu.Lock()
		for _, fd := range fds[:n] {
			if hup, ok := h.waiting[fd]; ok {
				close(hup)
				delete(h.waiting, fd)
			}
		}
		h.mu.Unlock()
	}
}

// Close stops the goroutine; watch tells nothing afterwards.
func (h *Hangups) Close() {
	h.mu.Lock()
	h.closed = true
	p := h.poll
	h.mu.Unlock()
	if p != nil {
		p.Close()
	}
	h.wg.Wait()
}
