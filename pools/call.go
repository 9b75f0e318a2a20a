package pools

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/shardproxy/shardproxy/internal/sockio"
)

// Doner is told when a call has its reply or its error.
type Doner interface {
	CallDone(c *Call)
}

// Call is one request on its way to a server and back.
type Call struct {
	// Frame is the request's bytes as they go to the server. It may alias the
	// client's read buffer: the pool does not keep it after Done.
	Frame []byte
	// Parts, if set, are the request in pieces written one after the
	// other instead of Frame: a large value between a small head and
	// tail goes from where it lies, not copied into one frame. Each
	// stays valid until Done, as Frame does.
	Parts [][]byte
	// Kind is passed to the reply framer (the memcache codec needs the
	// command to find a reply's end; RESP ignores it).
	Kind uint8
	// NoReply marks a request the server does not answer (memcache noreply):
	// the call completes once it is written.
	NoReply bool
	// Reply receives the reply's bytes, appended to what it holds.
	Reply []byte
	// Err is set when the call failed; Reply is then empty.
	Err error
	// Done is told once, when Reply or Err is set and the pool no longer
	// reads Frame.
	Done Doner
	// Sent is when the request arrived; the server's timeout counts from
	// it. Enqueue sets it to the current time when it is zero and the
	// server has a timeout.
	Sent time.Time
	// Queued is when the call was enqueued; the server's latency
	// histogram counts from it to the reply. Enqueue sets it to the
	// current time when it is zero; a caller that enqueues many calls at
	// once may set it first and save a clock read per call.
	Queued time.Time

	owned []byte // the pooled buffer Reply lies in, given back on Reset
	// pinned says Frame is queued where it lies, not copied: the writer
	// reads it until its write has returned. refs then counts what Done
	// waits for: the reply (or error), and the frame's release.
	pinned bool
	refs   atomic.Int32
}

// Reset prepares a call for reuse, keeping Reply's capacity unless it grew
// beyond keep bytes.
func (c *Call) Reset(keep int) {
	c.Frame = nil
	c.Parts = nil
	c.Kind = 0
	c.NoReply = false
	if c.owned != nil {
		sockio.PutBuffer(c.owned)
		c.owned = nil
		c.Reply = nil
	} else if cap(c.Reply) > keep {
		c.Reply = nil
	} else {
		c.Reply = c.Reply[:0]
	}
	c.Err = nil
	c.Done = nil
	c.Sent = time.Time{}
	c.Queued = time.Time{}
	c.pinned = false
	c.refs.Store(0)
}

// frames returns the request's pieces: Parts, or Frame alone.
func (c *Call) frames() [][]byte {
	if c.Parts != nil {
		return c.Parts
	}
	return [][]byte{c.Frame}
}

// size is the request's length in bytes.
func (c *Call) size() int {
	if c.Parts == nil {
		return len(c.Frame)
	}
	n := 0
	for _, f := range c.Parts {
		n += len(f)
	}
	return n
}

// pin marks the call's frame as read where it lies until unpin.
func (c *Call) pin() {
	c.pinned = true
	c.refs.Store(2)
}

// finish tells Done once the call has its reply or error and, if its frame
// is pinned, the frame is released too: a client may reuse the frame's
// buffer as soon as it is told, so it is not told while a write reads it
// (a server may answer before the whole request is written, as Redis does
// to a request over its size limit).
func (c *Call) finish() {
	if c.pinned && c.refs.Add(-1) > 0 {
		return
	}
	c.Done.CallDone(c)
}

// unpin releases a pinned frame: its write has returned, or it will never
// be written.
func (c *Call) unpin() { c.finish() }

func (c *Call) fail(err error) {
	c.Err = err
	c.finish()
}

// Errors attached to calls. They are wrapped with the server's name and the
// cause; use errors.Is to tell them apart.
var (
	// ErrTimeout: the server did not answer within the pool's timeout.
	ErrTimeout = errors.New("timeout")
	// ErrUnavailable: the server could not be reached or its connection broke.
	ErrUnavailable = errors.New("server unavailable")
	// ErrEjected: the server is ejected and the pool fails fast.
	ErrEjected = errors.New("server ejected")
	// ErrClosed: the pool is shutting down.
	ErrClosed = errors.New("proxy shutting down")
	// ErrFailover: the server's address changed (a failover) after the
	// request was written to the old address: it may or may not have run
	// there, and it is not sent again.
	ErrFailover = errors.New("server failed over")
	// ErrNotSent marks a call that failed before any byte of it was
	// written (its connection could not be made, or broke while the
	// call still waited in its queue): it did not run, and may be sent
	// again. It joins the error's other kinds; errors.Is tells it, and
	// the error's text is that of the failure alone.
	ErrNotSent = errors.New("not sent")
)

// notSent wraps a failure of a call that was never written (ErrNotSent).
type notSent struct{ error }

func (e notSent) Is(target error) bool { return target == ErrNotSent }

func (e notSent) Unwrap() error { return e.error }

// queue is a FIFO of calls, reusing its backing array.
type queue struct {
	buf  []*Call
	head int
}

// push appends c. When the backing array is full, the slots already
// popped are reclaimed first, so a queue that is never empty under a
// steady load does not grow without bound.
func (q *queue) push(c *Call) {
	if len(q.buf) == cap(q.buf) && q.head > 0 {
		n := copy(q.buf, q.buf[q.head:])
		clear(q.buf[n:])
		q.buf = q.buf[:n]
		q.head = 0
	}
	q.buf = append(q.buf, c)
}

func (q *queue) len() int { return len(q.buf) - q.head }

func (q *queue) peek() *Call { return q.buf[q.head] }

func (q *queue) pop() *Call {
	c := q.buf[q.head]
	q.buf[q.head] = nil
	q.head++
	if q.head == len(q.buf) {
		q.buf = q.buf[:0]
		q.head = 0
	}
	return c
}

// takeFront removes the n oldest calls and returns them.
func (q *queue) takeFront(n int) []*Call {
	out := make([]*Call, n)
	for i := range out {
		out[i] = q.pop()
	}
	return out
}

// drain removes every call and returns them in order.
func (q *queue) drain() []*Call {
	out := make([]*Call, q.len())
	copy(out, q.buf[q.head:])
	clear(q.buf)
	q.buf = q.buf[:0]
	q.head = 0
	return out
}
