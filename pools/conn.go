package pools

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/shardproxy/shardproxy/internal/sockio"
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

// readLoop frames replies and completes calls in order until nc fails.
func (c *Conn) readLoop(nc net.Conn) {
	defer c.s.wg.Done()
	r := &reader{c: c, nc: nc, timed: c.s.opt.Timeout > 0}
	r.rd.Init(nc)
	r.fill = r.readRaw
	defer r.release()
	for {
		err := r.read()
		if r.stop {
			return
		}
		if err != nil {
			if c.spuriousTimeout(nc, err, r.progress) {
				continue
			}
			c.broken(nc, c.readError(err))
			return
		}
	}
}

// read reads and serves what comes until the connection fails (or is no
// longer the reader's): it returns the read's error, or nil after serving
// a read on the slow path (TLS), or with r.stop set.
//
// On the raw path the replies are served inside the poller's callback,
// which then waits for the next bytes without returning: a read that
// emptied the socket is followed by a wait, not by a read that finds
// nothing (returning would have the next read start afresh, and find
// nothing, once per batch of replies). And the buffer is taken only once
// bytes have come: a connection whose replies are all in holds none while
// it waits (256 servers' connections would otherwise hold 8 MB between
// batches).
func (r *reader) read() error {
	if r.rd.Raw() {
		r.err = nil
		if err := r.rd.ReadWith(r.fill); err != nil {
			return err
		}
		return r.err
	}
	r.room()
	n, err := r.rd.Read(r.buf[len(r.buf):r.c.readLimit(r.buf)])
	if err != nil {
		return err
	}
	r.stop = !r.serve(n)
	return nil
}

// readRaw is read's poller callback (see sockio.Reader.ReadWith): it
// reads and serves until the socket is empty, then waits (false), unless
// the read failed or the reader stops (true).
func (r *reader) readRaw(fd uintptr) bool {
	for {
		r.room()
		room := r.c.readLimit(r.buf) - len(r.buf)
		n, ok, err := sockio.ReadInto(fd, r.buf[len(r.buf):len(r.buf)+room])
		if !ok {
			if len(r.buf) == 0 {
				r.release()
			}
			return false
		}
		if err != nil {
			r.err = err
			return true
		}
		if !r.serve(n) {
			r.stop = true
			return true
		}
		if n < room {
			// A short read took all the socket held: bytes that come
			// later wake the wait.
			return false
		}
	}
}

// serve takes the replies that the n bytes just read after r.buf's
// complete and tells their calls, in order, then writes what queued up
// meanwhile (with what the calls' owners queued when told). It reports
// whether the reader goes on.
func (r *reader) serve(n int) bool {
	c, nc := r.c, r.nc
	r.buf = r.buf[:len(r.buf)+n]
	if r.timed {
		r.progress = time.Now()
	}
	mine, bad := c.take(nc, r)
	if !mine {
		return false
	}
	if r.refusal != nil {
		// Down before the calls are told: their owner may send them
		// elsewhere, and must not pick this server again.
		c.s.refused(r.refusal)
		r.refusal = nil
	}
	if len(r.ready) > 0 {
		c.s.Stats.Latency.observe(time.Now(), r.ready)
	}
	handoff := r.deliver()
	if bad != nil {
		if handoff != nil {
			r.buf = nil // it went with the call
		}
		r.finish()
		c.broken(nc, bad)
		return false
	}
	r.keepRest(handoff != nil)
	// Only now, with nothing more read out of the buffer, may the calls
	// be done: the call that took the buffer may then reuse it, and the
	// buffer is back in the pool (or kept) before the calls' owners run,
	// here, to write their clients' replies. (With many servers, buffers
	// held through those writes added up to MBs.)
	r.finish()
	if r.demoted {
		r.demoted = false
		c.s.opt.OnDemoted()
	}
	c.mu.Lock()
	if c.nc == nc && c.queued() {
		// Replies came: write what queued up meanwhile.
		c.push(c.wr)
	} else {
		c.mu.Unlock()
	}
	return true
}

// room makes sure r.buf has room after its bytes: a buffer taken, or a
// full one grown.
func (r *reader) room() {
	if r.buf == nil {
		r.buf = sockio.GetBuffer(readBuffer)
	} else if len(r.buf) == cap(r.buf) {
		r.buf = r.c.grow(r.buf)
	}
}

// release gives the buffer back (when it holds no bytes, or the reader
// is done).
func (r *reader) release() {
	if r.buf != nil {
		sockio.PutBuffer(r.buf)
		r.buf = nil
	}
}

// reader is a connection reader's state: its buffer, and the calls framed
// from it with the spans of their replies.
type reader struct {
	c     *Conn
	nc    net.Conn
	rd    sockio.Reader
	fill  func(fd uintptr) bool // readRaw, made once
	err   error                 // readRaw's read error
	stop  bool                  // the reader is done (serve said so)
	timed bool                  // the pool has a timeout: progress is kept
	// progress is when bytes last came, while timed.
	progress time.Time
	buf      []byte
	off      int // end of the replies framed so far
	ready    []*Call
	spans    []int
	// demoted says a reply framed began with Options.Demoted.
	demoted bool
	// refusal is the first reply framed that Options.Refuses tells, nil
	// when none was.
	refusal []byte
}

// take frames the complete replies in r.buf and takes their calls off the
// queue, in order. It returns mine == false when nc is no longer the
// connection (the writer found it broken and failed its calls; the calls
// queued now belong to the next connection, not to these bytes), and bad
// when the bytes cannot be replies (the replies framed before are good).
func (c *Conn) take(nc net.Conn, r *reader) (mine bool, bad error) {
	r.off = 0
	r.ready, r.spans = r.ready[:0], r.spans[:0]
	c.mu.Lock()
	if c.nc != nc {
		c.mu.Unlock()
		return false, nil
	}
	isPush := c.s.opt.IsPush
	for r.off < len(r.buf) && (c.inflight.len() > 0 || isPush != nil) {
		var kind uint8
		if c.inflight.len() > 0 {
			kind = c.inflight.peek().Kind
		}
		m, err := c.s.opt.Frame(r.buf[r.off:], kind)
		if err != nil {
			bad = fmt.Errorf("%w: %s: bad reply: %w", ErrUnavailable, c.s.opt.Name, err)
			break
		}
		if m == 0 {
			break
		}
		if isPush != nil && isPush(r.buf[r.off:r.off+m]) {
			// It answers no request: never taken for a call's reply.
			c.s.Stats.Pushes.Add(1)
			r.off += m
			continue
		}
		if c.inflight.len() == 0 {
			break // a reply without a request: see below
		}
		if r.buf[r.off] == '-' && c.s.opt.OnDemoted != nil && bytes.HasPrefix(r.buf[r.off:], c.s.opt.Demoted) {
			r.demoted = true
		}
		if c.s.opt.Refuses != nil && r.refusal == nil && c.s.opt.Refuses(r.buf[r.off:r.off+m]) {
			r.refusal = r.buf[r.off : r.off+m]
		}
		r.ready = append(r.ready, c.inflight.pop())
		r.spans = append(r.spans, r.off, r.off+m)
		r.off += m
	}
	if bad == nil && c.inflight.len() == 0 && r.off < len(r.buf) && (isPush == nil || complete(c.s.opt.Frame, r.buf[r.off:])) {
		bad = fmt.Errorf("%w: %s: reply without a request", ErrUnavailable, c.s.opt.Name)
	}
	if len(r.ready) > 0 {
		c.s.failures.Store(0)
		c.s.Stats.Responses.Add(int64(len(r.ready)))
		c.s.Stats.ResponseBytes.Add(int64(r.off))
	}
	c.mu.Unlock()
	return true, bad
}

// complete reports whether b starts with a whole reply (or bytes that
// cannot be one).
func complete(frame Framer, b []byte) bool {
	m, err := frame(b, 0)
	return m > 0 || err != nil
}

// deliver gives each framed call its reply, copied out of the buffer,
// except handoff's: the call of a large reply that keeps the buffer it
// arrived in. It tells none of them it is done: finish does, after
// keepRest (the buffer changes owner when handoff is told, so the reader
// must have finished with it).
func (r *reader) deliver() (handoff *Call) {
	for i, call := range r.ready {
		a, b := r.spans[2*i], r.spans[2*i+1]
		if b-a >= handoffSize && len(call.Reply) == 0 && handoff == nil {
			// The buffer goes back to the pool when the call is reset;
			// the reader takes a fresh one. No copy of the value.
			call.Reply = r.buf[a:b:b]
			call.owned = r.buf
			handoff = call
			continue
		}
		call.Reply = append(call.Reply, r.buf[a:b]...)
	}
	return handoff
}

// finish tells the calls deliver gave their replies that they are done,
// in order.
func (r *reader) finish() {
	for i, call := range r.ready {
		r.ready[i] = nil
		call.finish()
	}
	r.ready = r.ready[:0]
}

// keepRest moves the bytes after the framed replies to the front of the
// buffer (a fresh one if the old one went with a reply).
func (r *reader) keepRest(handoff bool) {
	rest := len(r.buf) - r.off
	if handoff {
		// The old buffer went with the call.
		old := r.buf
		r.buf = nil
		if rest > 0 || !r.rd.Raw() {
			r.buf = sockio.GetBuffer(max(rest, readBuffer))[:rest]
			copy(r.buf, old[r.off:])
		}
		return
	}
	if rest == 0 && (r.rd.Raw() || cap(r.buf) > readBuffer) {
		// A raw reader takes a buffer again when bytes come.
		r.release()
		if !r.rd.Raw() {
			r.buf = sockio.GetBuffer(readBuffer)
		}
		return
	}
	copy(r.buf, r.buf[r.off:])
	r.buf = r.buf[:rest]
}

// handoffSize is the reply size from which the reader gives its buffer to
// the call instead of copying the reply out of it.
const handoffSize = 64 << 10

// grow makes room in a full read buffer: to the size the incomplete reply
// needs when the framer can tell, else twice as large.
func (c *Conn) grow(buf []byte) []byte {
	size := 2 * cap(buf)
	if c.s.opt.Need != nil {
		// A server's claimed length is trusted up to trustedNeed (a big
		// value is read into one buffer, never copied from one into the
		// next), beyond it within 64 MB per step.
		need := c.s.opt.Need(buf)
		if need > trustedNeed {
			need = min(need, cap(buf)+64<<20)
		}
		size = max(size, need)
	}
	nb := sockio.GetBuffer(size)[:len(buf)]
	copy(nb, buf)
	sockio.PutBuffer(buf)
	return nb
}

// trustedNeed is the largest reply length a reader allocates at once: 512
// MB, Redis's largest bulk string by default (proto-max-bulk-len).
const trustedNeed = 512 << 20

// readLimit returns how far into buf's capacity the next read may go: to
// the end of a large reply begun in buf, so that the reply fills the buffer
// exactly and leaves with it (see deliver) instead of the next reply's
// first bytes being copied out after it; else to the end.
func (c *Conn) readLimit(buf []byte) int {
	if c.s.opt.Need != nil && len(buf) > 0 {
		if need := c.s.opt.Need(buf); need >= handoffSize && need > len(buf) && need <= cap(buf) {
			return need
		}
	}
	return cap(buf)
}

// readBuffer is the size of a server connection's read buffer between
// large replies.
const readBuffer = 32 << 10

// spuriousTimeout reports whether a read deadline fired although the server
// has not kept a caller waiting for the timeout: the calls it was set for
// have been answered, or bytes of a reply came within the timeout (a large
// reply still arriving, with calls queued behind it, is progress, not a
// hung server). It then moves the deadline on, or clears it.
func (c *Conn) spuriousTimeout(nc net.Conn, err error, progress time.Time) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nc != nc {
		return false
	}
	if c.inflight.len() == 0 {
		nc.SetReadDeadline(time.Time{})
		c.armed = false
		return true
	}
	if c.s.held.Load() && c.inflight.len() == c.unwritten {
		// Nothing written waits: the server keeps no one waiting.
		nc.SetReadDeadline(time.Now().Add(c.s.opt.Timeout))
		return true
	}
	since := c.inflight.peek().Sent
	if progress.After(since) {
		since = progress
	}
	deadline := since.Add(c.s.opt.Timeout)
	if time.Now().Before(deadline) {
		nc.SetReadDeadline(deadline)
		return true
	}
	return false
}

func (c *Conn) readError(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w: %s: no reply within %v", ErrTimeout, c.s.opt.Name, c.s.opt.Timeout)
	}
	if c.s.closed.Load() {
		return ErrClosed
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %s: connection closed by server: %w", ErrUnavailable, c.s.opt.Name, err)
	}
	return fmt.Errorf("%w: %s: read: %w", ErrUnavailable, c.s.opt.Name, err)
}
