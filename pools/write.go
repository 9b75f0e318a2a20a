package pools

import (
	"fmt"
	"net"

	"github.com/shardproxy/shardproxy/internal/sockio"
)

// writer is the writing side of one live connection. Whoever finds it
// idle with frames queued writes them, in its own goroutine (a client's,
// an event loop, the connection's reader, a dial): there is no goroutine
// per connection waiting to write. When the socket is full, a goroutine
// started then writes the rest and what queues meanwhile, and returns once
// the queue is empty.
type writer struct {
	nc net.Conn
	w  sockio.Writer
	// busy says someone writes to nc: the others only queue (guarded by
	// Conn.mu). The fields below are the writer's while busy.
	busy bool
	buf  []byte   // the run of out being written
	iov  [][]byte // when pieces were queued: the runs and frames in order
	pins []*Call  // the calls whose frames are in iov (see Call.pin)
}

// push writes the queue to w's connection until it is empty, never
// waiting for the socket. Called with c.mu held; returns with it released.
func (c *Conn) push(w *writer) {
	if w.busy {
		c.mu.Unlock()
		return
	}
	w.busy = true
	for c.dequeue(w) {
		c.mu.Unlock()
		var err error
		if len(w.iov) == 0 {
			var n int
			n, err = w.w.TryWrite(w.buf)
			if err == nil && n < len(w.buf) {
				c.writeRest(w, w.buf[n:])
				return
			}
		} else {
			err = w.w.TryWritev(w.iov)
			if err == nil && !written(w.iov) {
				c.writeRest(w, nil)
				return
			}
		}
		c.mu.Lock()
		if !c.wrote(w, err) {
			return
		}
	}
	w.busy = false
	c.mu.Unlock()
}

// dequeue moves the queue into w for a write, reporting whether anything
// is to be written: w's connection is still the current one, not held,
// with frames queued. Called with c.mu held.
func (c *Conn) dequeue(w *writer) bool {
	if c.nc != w.nc || c.s.held.Load() || !c.queued() {
		return false
	}
	w.buf = c.out
	if len(c.pieces) > 0 {
		w.iov = append(append(w.iov[:0], c.pieces...), w.buf[c.mark:])
		clear(c.pieces)
		c.pieces = c.pieces[:0]
	}
	w.pins = append(w.pins[:0], c.pins...)
	clear(c.pins)
	c.pins = c.pins[:0]
	c.mark = 0
	c.out, c.spare = c.spare[:0], nil
	c.unwritten = 0
	return true
}

// wrote ends a write: the frames it held are released, and a failed write
// breaks the connection. It reports whether the writer goes on, with c.mu
// held; if not, c.mu is released. Called with c.mu held.
func (c *Conn) wrote(w *writer, err error) bool {
	pins := w.pins
	clear(w.iov)
	w.iov = w.iov[:0]
	if cap(w.buf) <= 1<<20 {
		c.spare = w.buf[:0]
	}
	w.buf = nil
	if err == nil && len(pins) == 0 {
		return true
	}
	c.mu.Unlock()
	// The frames are no longer read: their calls may be done.
	for i, call := range pins {
		pins[i] = nil
		call.unpin()
	}
	w.pins = pins[:0]
	if err != nil {
		c.broken(w.nc, fmt.Errorf("%w: %s: write: %w", ErrUnavailable, c.s.opt.Name, err))
		return false
	}
	c.mu.Lock()
	return true
}

// writeRest has a goroutine of its own write what the socket did not take
// (rest of w.buf, or what is left of w.iov when rest is nil), then the
// queue until it is empty. Called with w busy and c.mu released.
func (c *Conn) writeRest(w *writer, rest []byte) {
	c.mu.Lock()
	if c.s.closed.Load() {
		// Close waits for the goroutines it knows: start none. The
		// connection is closing: its calls fail.
		c.wrote(w, ErrClosed)
		return
	}
	c.s.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.s.wg.Done()
		var err error
		if rest != nil {
			err = w.w.Write(rest)
		} else {
			err = w.w.Writev(w.iov)
		}
		c.mu.Lock()
		if !c.wrote(w, err) {
			return
		}
		for c.dequeue(w) {
			c.mu.Unlock()
			if len(w.iov) == 0 {
				err = w.w.Write(w.buf)
			} else {
				err = w.w.Writev(w.iov)
			}
			c.mu.Lock()
			if !c.wrote(w, err) {
				return
			}
		}
		w.busy = false
		c.mu.Unlock()
	}()
}

// written reports whether every buffer of bufs was written (shortened to
// nothing).
func written(bufs [][]byte) bool {
	for _, b := range bufs {
		if len(b) > 0 {
			return false
		}
	}
	return true
}
