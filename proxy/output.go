package proxy

import (
	"sync"

	"github.com/shardproxy/shardproxy/internal/sockio"
)

// output holds the replies a client has not read yet. A client may write a
// whole pipeline before it reads any reply (redis-py's pipeline, Jedis,
// batch loaders): if the client's goroutine waited for its replies to be
// written, it would stop reading requests, the client would block writing
// them, and neither would ever go on. So a batch's replies are written
// without waiting; what the socket does not take is queued here, and a
// writer goroutine drains the queue while the client's goroutine keeps
// reading and forwarding. The queue is bounded by client_output_limit,
// beyond which the client is closed (Redis's client-output-buffer-limit).
type output struct {
	mu sync.Mutex
	// queue holds the replies waiting for the writer, in order, in
	// buffers of outChunk bytes (so that it never holds much more than
	// it queued, and never copies what it holds to grow); size is their
	// length in all.
	queue [][]byte
	size  int
	spare [][]byte
	// writing is the size of what the writer is writing now.
	writing int
	// active says a writer goroutine owns the connection's writes; done
	// is closed when it returns.
	active bool
	done   chan struct{}
	err    error // the writer's write failed; the client is closed
}

// send writes a batch's replies (out, or iov when large replies are sent
// from where they lie): at once when the socket takes them all, else what
// is left is queued for the client's writer. It returns false when the
// client must be closed.
func (cl *client) send(out []byte, iov [][]byte) bool {
	if sb := cl.sub.Load(); sb != nil {
		// Subscribed: messages are written from other goroutines too.
		sb.mu.Lock()
		defer sb.mu.Unlock()
	}
	return cl.sendNow(out, iov)
}

// sendNow is send for the client's goroutine, or for the holder of its
// subscriber's lock.
func (cl *client) sendNow(out []byte, iov [][]byte) bool {
	o := &cl.out
	o.mu.Lock()
	active, err := o.active, o.err
	o.mu.Unlock()
	if err != nil {
		return false
	}
	// Only the client's goroutine (or, subscribed, the holder of the
	// subscriber's lock) starts a writer, so a writer found gone stays
	// gone until it starts another.
	if !active {
		cl.refreshWriteDeadline()
		if iov == nil {
			n, err := cl.tryWrite(out)
			if err != nil {
				cl.countErr(err)
				return false
			}
			if out = out[n:]; len(out) == 0 {
				return true
			}
		} else {
			if err := cl.tryWritev(iov); err != nil {
				cl.countErr(err)
				return false
			}
			if buffersLen(iov) == 0 {
				return true
			}
		}
	}
	return cl.enqueue(out, iov)
}

// tryWrite writes what the socket takes now of out, without waiting.
func (cl *client) tryWrite(out []byte) (int, error) {
	if cl.st == nil {
		return sockio.TryWriteFD(cl.fd, out)
	}
	return cl.st.w.TryWrite(out)
}

// tryWritev writes what the socket takes now of iov, without waiting, and
// shortens iov's elements by what it wrote.
func (cl *client) tryWritev(iov [][]byte) error {
	if cl.st != nil {
		return cl.st.w.TryWritev(iov)
	}
	if cl.bt != nil {
		return sockio.TryWritevFD(cl.fd, iov, &cl.bt.iovecs)
	}
	var scratch sockio.Iovecs
	return sockio.TryWritevFD(cl.fd, iov, &scratch)
}

// enqueue queues replies for the writer, starting it when it is not
// running. It returns false when the client is over its output limit.
func (cl *client) enqueue(out []byte, iov [][]byte) bool {
	if cl.st == nil && !cl.attach() {
		return false // its writer needs the socket in Go's poller
	}
	o := &cl.out
	o.mu.Lock()
	if iov == nil {
		o.add(out)
	} else {
		for _, b := range iov {
			o.add(b)
		}
	}
	held := o.size + o.writing
	if limit := cl.p.routing().lim.outputLimit; limit > 0 && held > limit {
		o.mu.Unlock()
		cl.p.stats.clientOverflow.Add(1)
		cl.p.log.Warn("client closed: replies it has not read exceed client_output_limit",
			"remote", remoteOf(cl), "bytes", held, "limit", cl.p.routing().lim.outputLimit)
		return false
	}
	start := !o.active
	if start {
		o.active = true
		o.done = make(chan struct{})
	}
	done := o.done
	o.mu.Unlock()
	if start {
		go cl.writeLoop(done)
	}
	return true
}

// writeLoop writes the queued replies until the queue is empty or a write
// fails; a failed write shuts the connection down, so the client's reader
// (goroutine or event loop) stops reading too and closes it.
func (cl *client) writeLoop(done chan struct{}) {
	defer close(done)
	o := &cl.out
	var iov [][]byte
	for {
		o.mu.Lock()
		if o.size == 0 {
			o.active, o.writing = false, 0
			o.mu.Unlock()
			return
		}
		chunks := o.queue
		o.queue, o.spare = o.spare[:0], nil
		o.writing, o.size = o.size, 0
		o.mu.Unlock()
		cl.refreshWriteDeadline()
		iov = append(iov[:0], chunks...) // Writev shortens its elements
		err := cl.st.w.Writev(iov)
		clear(iov)
		for _, b := range chunks {
			sockio.PutBuffer(b)
		}
		clear(chunks)
		o.mu.Lock()
		o.spare = chunks[:0]
		if err != nil {
			o.err, o.active, o.writing = err, false, 0
			for _, b := range o.queue {
				sockio.PutBuffer(b)
			}
			o.queue, o.spare, o.size = nil, nil, 0
			o.mu.Unlock()
			cl.shutdown()
			return
		}
		o.mu.Unlock()
	}
}

// outChunk is the size of the output queue's buffers.
const outChunk = 64 << 10

// add appends b to the queue. Called with o.mu held.
func (o *output) add(b []byte) {
	o.size += len(b)
	for len(b) > 0 {
		n := len(o.queue)
		if n == 0 || len(o.queue[n-1]) == cap(o.queue[n-1]) {
			o.queue = append(o.queue, sockio.GetBuffer(outChunk))
			n++
		}
		last := o.queue[n-1]
		k := copy(last[len(last):cap(last)], b)
		o.queue[n-1] = last[:len(last)+k]
		b = b[k:]
	}
}

// refreshWriteDeadline moves the write deadline (client_write_timeout) on
// when less than its slack is left. Called only by whoever writes now.
func (cl *client) refreshWriteDeadline() {
	if wt := cl.p.routing().lim.writeTimeout; wt > 0 && cl.st != nil {
		if next, ok := nextDeadline(cl.st.wdl, wt); ok {
			cl.st.wdl = next
			cl.nc.SetWriteDeadline(next)
		}
	}
}

// pendingOutput reports whether replies wait to be written.
func (cl *client) pendingOutput() bool {
	o := &cl.out
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.active
}

// finishOutput waits until the writer has written every queued reply, or
// failed; it returns the writer's error. A client leaving (QUIT, EOF)
// thus still gets every reply it was sent; a closed connection ends the
// writer at once.
func (cl *client) finishOutput() error {
	o := &cl.out
	o.mu.Lock()
	done, err := o.done, o.err
	active := o.active
	o.mu.Unlock()
	if active {
		<-done
		o.mu.Lock()
		err = o.err
		o.mu.Unlock()
	}
	return err
}

// buffersLen is the total length of bufs.
func buffersLen(bufs [][]byte) int {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	return n
}

// outputErr returns the writer's error, if it failed, without
// waiting for a running writer.
func (cl *client) outputErr() error {
	o := &cl.out
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}
