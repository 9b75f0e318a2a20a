package pools

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// Conn is one connection to a server, shared by many clients. Calls are
// answered in the order they were enqueued.
type Conn struct {
	s      *Server
	hello3 bool // it says Options.Hello3 (Server.Conn3)

	mu      sync.Mutex
	nc      net.Conn // nil while down
	wr      *writer  // nc's writing side
	dialing bool
	out     []byte // frames queued for the next write
	spare   []byte
	// pieces holds, when a large frame is queued, the queue in order: runs
	// of out and large frames referenced where they lie (not copied).
	pieces [][]byte
	// pins are the calls whose frames are in pieces (see Call.pin).
	pins     []*Call
	mark     int   // start of the run of out not yet in pieces
	inflight queue // calls written or queued, awaiting replies, in order
	// unwritten counts the calls at the tail of inflight whose frames are
	// still in out.
	unwritten int
	// armed says a read deadline is set on nc. While calls are in flight it
	// is, no later than the oldest call's sent+Timeout; it moves only when
	// it fires (see spuriousTimeout), not on every reply.
	armed bool
}

// Enqueue queues a call on the connection. Nothing is written until Flush.
// The call's Done is told exactly once, possibly before Enqueue returns.
func (c *Conn) Enqueue(call *Call) {
	s := c.s
	if s.closed.Load() {
		call.fail(ErrClosed)
		return
	}
	if s.opt.FailFast && s.ejected.Load() {
		call.fail(fmt.Errorf("%w: %s", ErrEjected, s.opt.Name))
		return
	}
	s.Stats.Requests.Add(1)
	s.Stats.RequestBytes.Add(int64(call.size()))
	if !call.NoReply && call.Queued.IsZero() {
		call.Queued = time.Now()
	}
	c.mu.Lock()
	c.queueFrames(call)
	if call.NoReply {
		c.mu.Unlock()
		call.finish()
		return
	}
	if s.opt.Timeout > 0 {
		if call.Sent.IsZero() {
			call.Sent = call.Queued
		}
		if !c.armed && c.nc != nil {
			c.nc.SetReadDeadline(call.Sent.Add(s.opt.Timeout))
			c.armed = true
		}
	}
	c.inflight.push(call)
	c.unwritten++
	c.mu.Unlock()
}

// queueFrames queues the call's frame (or parts): a large one where it
// lies, the others copied. Called with c.mu held.
func (c *Conn) queueFrames(call *Call) {
	pinned := false
	for _, f := range call.frames() {
		if len(f) < bigFrame || call.NoReply {
			c.out = append(c.out, f...)
			continue
		}
		// The frame stays valid until the call is done, and the call is
		// not done before its frame is written or the writer has quit.
		c.pieces = append(c.pieces, c.out[c.mark:len(c.out):len(c.out)], f)
		c.mark = len(c.out)
		if !pinned {
			pinned = true
			call.pin()
			c.pins = append(c.pins, call)
		}
	}
}

// Flush writes what is queued, dialing first if the connection is down
// (the dial happens in the caller's goroutine; calls queued meanwhile by
// others wait for it). It never waits for the socket: what it cannot take
// now is written by a goroutine of its own (see push).
func (c *Conn) Flush() { c.flush(false) }

// FlushAsync is Flush for a caller that must not block, an event loop: a
// connection that is down is dialled in a goroutine of its own, and the
// calls queued wait for that dial (or fail with it).
func (c *Conn) FlushAsync() { c.flush(true) }

// flush is Flush, dialing in a goroutine of its own when async.
func (c *Conn) flush(async bool) {
	c.mu.Lock()
	if c.dialing || !c.queued() {
		c.mu.Unlock()
		return
	}
	if c.nc == nil {
		if c.s.held.Load() {
			c.mu.Unlock()
			return // Release dials
		}
		c.dialing = true
		if async && !c.s.closed.Load() {
			// Added under c.mu, which Close's shutdown takes after
			// closed is set: never after Close's Wait began.
			c.s.wg.Add(1)
			c.mu.Unlock()
			go func() {
				defer c.s.wg.Done()
				c.dial()
			}()
			return
		}
		c.mu.Unlock()
		c.dial()
		return
	}
	if c.inflight.len() > c.unwritten {
		// Replies are due: the reader writes the queue when they come,
		// so requests of many clients go in one write.
		c.mu.Unlock()
		return
	}
	c.push(c.wr)
}

// queued reports whether frames wait to be written. Called with c.mu held.
func (c *Conn) queued() bool { return len(c.out) > 0 || len(c.pieces) > 0 }

// bigFrame is the request size from which a frame is written from where
// it lies instead of being copied into the connection's queue.
const bigFrame = 64 << 10

// connect dials the server; on success it starts the reader and writes
// whatever was queued meanwhile, on failure it fails every queued call.
func (c *Conn) connect() error {
	c.mu.Lock()
	if c.nc != nil || c.dialing {
		c.mu.Unlock()
		return nil
	}
	c.dialing = true
	c.mu.Unlock()
	return c.dial()
}

// dial is connect's second half: the caller has set c.dialing, so no one
// else dials this connection meanwhile (two live connections would share
// one queue of calls and take each other's replies).
func (c *Conn) dial() error {
	addr := c.s.Addr()
	nc, err := c.s.dialTo(addr, c.hello3)
	for range 3 {
		if err != nil || addr == c.s.Addr() {
			break
		}
		// The server moved (SetAddr) while this dial went to its old
		// address: dial the new one.
		nc.Close()
		addr = c.s.Addr()
		nc, err = c.s.dialTo(addr, c.hello3)
	}
	c.mu.Lock()
	c.dialing = false
	if err == nil && c.s.closed.Load() {
		nc.Close()
		err = ErrClosed
	}
	if err != nil {
		calls := c.inflight.drain()
		c.dropQueue()
		c.mu.Unlock()
		if errors.Is(err, os.ErrDeadlineExceeded) && c.s.opt.Timeout > 0 {
			// Connected, but the handshake had no answer in time: a
			// server that hangs, as a request's timeout tells it.
			err = fmt.Errorf("%w: %s: no reply within %v", ErrTimeout, c.s.opt.Name, c.s.opt.Timeout)
		} else {
			err = fmt.Errorf("%w: %s: %w", ErrUnavailable, c.s.opt.Name, err)
		}
		// Count the failure first: a client told of it may send its
		// next request at once, which must find the server ejected if
		// this failure ejects it (as in nutcracker, where nothing runs
		// in between).
		c.s.failure(err)
		for _, call := range calls {
			call.fail(notSent{err})
		}
		return err
	}
	if c.nc != nil {
		panic("pools: a second live connection") // dialing excludes this
	}
	c.nc = nc
	c.wr = &writer{nc: nc}
	c.wr.w.Init(nc)
	c.s.Stats.ServerConnections.Add(1)
	c.s.Stats.Connects.Add(1)
	c.armed = c.s.opt.Timeout > 0 && c.inflight.len() > 0
	if c.armed {
		nc.SetReadDeadline(c.inflight.peek().Sent.Add(c.s.opt.Timeout))
	}
	c.s.wg.Add(1)
	go c.readLoop(nc)
	c.push(c.wr)
	return nil
}

// broken closes nc (if it is still the current connection) and fails every
// call queued on it with err.
func (c *Conn) broken(nc net.Conn, err error) {
	c.mu.Lock()
	if c.nc != nc {
		c.mu.Unlock()
		return
	}
	c.nc, c.wr = nil, nil
	c.closeConn(nc)
	// The last calls of inflight were never handed to a writer. A write
	// under way may still read the frames of the others: those are
	// pinned (Call.pin), and done only once it has returned.
	sent := c.inflight.len() - c.unwritten
	calls := c.inflight.drain()
	c.dropQueue()
	c.mu.Unlock()
	c.s.Stats.ServerConnections.Add(-1)
	// Count the failure before the calls hear of it: a client told may
	// send its next request at once, which must find the server ejected
	// if this failure ejects it (as in nutcracker, where nothing runs in
	// between).
	if !errors.Is(err, ErrClosed) {
		c.s.state.Store(stateDown)
		if errors.Is(err, ErrTimeout) {
			c.s.Stats.ServerTimedout.Add(1)
		} else if errors.Is(err, io.EOF) {
			c.s.Stats.ServerEOF.Add(1)
		} else {
			c.s.Stats.ServerErr.Add(1)
		}
		c.s.failure(err)
	}
	for i, call := range calls {
		if i >= sent {
			call.fail(notSent{err})
		} else {
			call.fail(err)
		}
	}
}

// move closes the connection because its server moved to another address
// (Server.SetAddr): the calls already written fail with err, those still
// queued stay, and go out on a connection to the new address, dialled now.
func (c *Conn) move(err error) {
	c.mu.Lock()
	nc := c.nc
	if nc == nil {
		// Down, or dialing: the next dial (or this one, see dial) goes
		// to the new address.
		c.mu.Unlock()
		return
	}
	c.nc, c.wr = nil, nil
	c.closeConn(nc)
	// A write under way may still read frames of the calls written:
	// those are pinned, as in broken.
	written := c.inflight.takeFront(c.inflight.len() - c.unwritten)
	redial := c.queued()
	c.dialing = redial
	c.mu.Unlock()
	c.s.Stats.ServerConnections.Add(-1)
	for _, call := range written {
		call.fail(err)
	}
	if redial {
		c.dial()
	}
}

// closeConn closes nc, the current connection until now, in a goroutine
// of its own: nc's reader may be serving replies inside the poller's
// callback, which holds the socket open (a Close waits until it returns),
// and may be the caller, or wait for c.mu, which the caller may hold. The
// reader stops once the close wakes it, or at its next reply (nc is no
// longer the connection). Called while nc's reader runs, so s.wg is not
// zero.
func (c *Conn) closeConn(nc net.Conn) {
	c.s.wg.Add(1)
	go func() {
		defer c.s.wg.Done()
		nc.Close()
	}()
}

// dropQueue forgets every queued frame, releasing the pinned ones (their
// calls fail; none of them will be written). Called with c.mu held.
func (c *Conn) dropQueue() {
	c.out = c.out[:0]
	clear(c.pieces)
	c.pieces = c.pieces[:0]
	for _, call := range c.pins {
		call.unpin()
	}
	clear(c.pins)
	c.pins = c.pins[:0]
	c.mark = 0
	c.unwritten = 0
}

// shutdown closes the connection for good.
func (c *Conn) shutdown() {
	c.mu.Lock()
	nc := c.nc
	c.mu.Unlock()
	if nc != nil {
		c.broken(nc, ErrClosed)
	}
}
