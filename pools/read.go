package pools

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/shardproxy/shardproxy/internal/sockio"
)

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
