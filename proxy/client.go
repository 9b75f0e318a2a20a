package proxy

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardproxy/shardproxy/internal/sockio"
	"github.com/shardproxy/shardproxy/pools"
)

// client is one client connection: a single goroutine reads a batch of
// requests, sends them, waits for every reply, writes the replies in order,
// and reads again. While idle it holds no buffer.
type client struct {
	id uint64
	nc net.Conn // nil while the client is a bare descriptor (clientsock.go)
	// st is the state of nc's reads and writes, nil with nc.
	st *stream
	fd int // the socket, for parking; -1 when it cannot park
	p  *pool
	// pending counts calls not yet done; the last one to finish wakes the
	// client.
	pending atomic.Int64
	// out holds replies the client has not taken yet (see output.go).
	out output
	// leaving says the client asked to go (QUIT) or closed its side: the
	// replies it was sent are still written before the connection closes.
	leaving bool
	// counted says how the connection ends is counted (client_eof or
	// client_err): the first cause counts, once. A subscriber's readers
	// count a failed write too, from their goroutines.
	counted atomic.Bool

	// Per-client protocol state.
	authed bool
	// resp3 says the client said HELLO 3: it is answered in RESP3, its
	// requests go on server connections that said HELLO 3 too.
	resp3 bool
	// sess is the client's transaction or watch in progress (session.go).
	sess *session
	// sub is the client's subscriptions (pubsub.go), nil when it has none:
	// set by the client's goroutine, read by its subscriptions' readers.
	sub     atomic.Pointer[subscriber]
	name    string
	swallow int // bytes still to discard (memcache: a rejected value's block)

	// bt is the batch being filled (nil while idle).
	bt *batch
	// idleSince is, while the client is parked, when it went idle.
	idleSince time.Time
	// received is when the last read returned bytes, taken only when the
	// pool has a server timeout: its calls' timeouts count from it.
	received time.Time

	// Event loop state (loop.go). async says the batch is served by an
	// event loop: the end of its last call goes on with it (CallDone),
	// and a request that needs a goroutine ends its parse (handOff).
	// off and quit are the round's parse result, retried that its
	// replica reads went to their primaries. polled says the socket is
	// in its parker's epoll set (disarmed while the client is served).
	// sockMu guards the socket (clientsock.go), closed says it is
	// closed.
	sockMu                                sync.Mutex
	closed                                bool
	async, handOff, quit, retried, polled bool
	off                                   int
}

// stream is what a client reads and writes its net.Conn with: a client
// served by a goroutine (and its output's writer) has one; one an event
// loop accepted as a bare descriptor has none until it attaches, and so
// costs less while idle.
type stream struct {
	rd   sockio.Reader // Raw, or (TLS, off Linux) reads go through nc
	w    sockio.Writer
	wake chan struct{} // the last call's end wakes the client's goroutine
	// readFn and tryReadFn are rawRead and tryRead, made once.
	readFn, tryReadFn func(fd uintptr) bool
	// The read and write deadlines set last (see nextDeadline), and when
	// the client last started waiting for a request.
	rdl, wdl  time.Time
	waitStart time.Time
	// The result of the last raw read; again says tryRead found nothing.
	n     int
	err   error
	again bool
	// first receives, without a buffer, the first byte an idle client
	// sends over a connection that cannot wait for readability (TLS).
	first [1]byte
}

// newStream makes the stream of cl's net.Conn nc.
func newStream(cl *client, nc net.Conn) *stream {
	st := &stream{wake: make(chan struct{}, 1)}
	st.rd.Init(nc)
	st.w.Init(nc)
	st.readFn, st.tryReadFn = cl.rawRead, cl.tryRead
	return st
}

// conn is the connection of srv that carries the client's requests: one
// that said HELLO 3 for a RESP3 client.
func (cl *client) conn(srv *pools.Server) *pools.Conn {
	if cl.resp3 {
		return srv.Conn3(cl.id)
	}
	return srv.Conn(cl.id)
}

// takeBatch gives the client a batch to read into.
func (cl *client) takeBatch() *batch {
	cl.bt = getBatch()
	cl.p.stats.clientBuffered.Add(1)
	return cl.bt
}

// dropBatch gives the client's batch back to the pool.
func (cl *client) dropBatch() {
	cl.bt.release()
	cl.bt = nil
	cl.p.stats.clientBuffered.Add(-1)
}

// CallDone implements pools.Doner. It reads how the client is served
// before it counts the call done: once the count is zero the client may
// go on, and change that, before this returns.
func (cl *client) CallDone(*pools.Call) {
	async, st := cl.async, cl.st
	if cl.pending.Add(-1) == 0 {
		if async {
			cl.roundDone()
			return
		}
		select {
		case st.wake <- struct{}{}:
		default:
		}
	}
}

func newClient(p *pool, nc net.Conn, id uint64) *client {
	cl := &client{id: id, nc: nc, p: p}
	cl.st = newStream(cl, nc)
	cl.fd = sockio.FD(nc)
	if tc, ok := nc.(*tls.Conn); ok {
		// Reads go through crypto/tls, but an idle TLS client can still
		// park on its socket: it parks only after a read timed out, when
		// crypto/tls holds no whole record, so new bytes on the socket
		// are what it waits for.
		cl.fd = sockio.FD(tc.NetConn())
	}
	return cl
}

// read reads into the client's batch, taking a batch from the pool only
// when bytes are there: an idle client holds no buffer. On a socket it
// reads inside the poller's callback, so a read that would block costs one
// syscall and no buffer, and a read with bytes costs one syscall.
func (cl *client) read() (int, error) {
	st := cl.st
	if !st.rd.Raw() {
		if cl.bt == nil {
			// Idle: wait for the first byte without a buffer. The
			// batch comes with it; crypto/tls keeps the rest of the
			// record, and the next read returns it at once.
			n, err := cl.nc.Read(st.first[:])
			if n == 0 {
				return 0, err
			}
			bt := cl.takeBatch()
			bt.in = append(bt.in, st.first[0])
			return n, err
		}
		if !cl.grow() {
			return 0, errTooLarge
		}
		bt := cl.bt
		n, err := cl.nc.Read(bt.in[len(bt.in):cap(bt.in)])
		bt.in = bt.in[:len(bt.in)+n]
		return n, err
	}
	st.n, st.err = 0, nil
	if err := st.rd.ReadWith(st.readFn); err != nil {
		return 0, err
	}
	return st.n, st.err
}

// rawRead is the poller callback of read (sockio's ReadWith): it returns
// false to wait.
func (cl *client) rawRead(fd uintptr) bool {
	// A batch taken here is counted (client_buffered) only once it stays:
	// most reads of an idle client find nothing and give it back.
	fresh := cl.bt == nil
	if fresh {
		cl.bt = getBatch()
	}
	bt := cl.bt
	if !cl.grow() {
		cl.st.err = errTooLarge
	} else {
		n, ok, err := sockio.ReadInto(fd, bt.in[len(bt.in):cap(bt.in)])
		if !ok {
			if fresh {
				cl.bt = nil
				bt.release()
			}
			return false
		}
		bt.in = bt.in[:len(bt.in)+n]
		cl.st.n, cl.st.err = n, err
	}
	if fresh {
		cl.p.stats.clientBuffered.Add(1)
	}
	return true
}

// grow makes room in the read buffer, up to the request size limit.
func (cl *client) grow() bool {
	bt := cl.bt
	if len(bt.in) < cap(bt.in) {
		return true
	}
	if cap(bt.in) >= cl.p.routing().lim.maxRequest {
		return false
	}
	// Grow to what the request claims, but by at most 8 MB beyond what
	// has arrived, so a claimed length costs memory only as bytes come.
	need := min(cl.p.proto.requestNeed(bt.in), cap(bt.in)+8<<20)
	size := min(max(2*cap(bt.in), need), cl.p.routing().lim.maxRequest)
	nb := sockio.GetBuffer(size)[:len(bt.in)]
	copy(nb, bt.in)
	if cap(bt.in) == batchIn && bt.small == nil {
		bt.small = bt.in[:0] // kept for when the batch is released
	} else {
		sockio.PutBuffer(bt.in)
	}
	bt.in = nb
	return true
}

var errTooLarge = errors.New("request too large")

// serve runs the client until it leaves, errs, or the pool closes, or
// until it has been idle for the pool's client_park_after and parks: then
// it returns true, and the parker holds the open connection.
func (cl *client) serve() (parked bool) {
	defer func() {
		if !parked {
			cl.end()
		}
	}()
	proto := cl.p.proto
	cl.async = false
	if !cl.attach() {
		return
	}
	if cl.bt != nil && len(cl.bt.in) > 0 {
		// An event loop read these requests (loop.go): they go first.
		if !cl.handle(cl.bt, proto) {
			return
		}
		if cl.backToLoop() {
			return true
		}
	}
	// After client_park_after of silence a client parks (Linux).
	lim := &cl.p.routing().lim
	idle, parkAfter := lim.idleTimeout, time.Duration(0)
	if cl.fd >= 0 && cl.p.parks.Load() != nil {
		parkAfter = lim.parkAfter
	}
	wait := idle // the read deadline's distance
	if parkAfter > 0 && (idle == 0 || parkAfter < idle) {
		wait = parkAfter
	}
	fresh := true // a new wait for a request begins
	for {
		if wait > 0 {
			now := time.Now()
			if fresh {
				cl.st.waitStart = now
			}
			if next, ok := nextDeadlineAt(now, cl.st.rdl, wait); ok {
				cl.st.rdl = next
				cl.nc.SetReadDeadline(next)
			}
		}
		fresh = true
		_, err := cl.read()
		if cl.p.draining.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
			// The pool is leaving (a reload removed it) and this client
			// has nothing in flight.
			cl.leaving = true
			return
		}
		if wait > 0 && errors.Is(err, os.ErrDeadlineExceeded) {
			waited := time.Since(cl.st.waitStart)
			switch {
			case cl.pendingOutput():
				// Not idle while its replies are being written.
				cl.st.rdl = time.Time{}
				continue
			case idle > 0 && waited >= idle-deadlineSlack(idle) && cl.sub.Load() == nil:
				// An idle timeout (a subscriber has none, as in Redis):
				// counted and closed below.
			case parkAfter > 0 && waited >= parkAfter-deadlineSlack(parkAfter) && cl.bt == nil:
				cl.idleSince, cl.st.rdl = cl.st.waitStart, time.Time{}
				if cl.p.parkerOf(cl).park(cl) {
					return true
				}
				fallthrough
			default:
				// Not idle long enough, or holding part of a request:
				// wait on with a fresh deadline.
				cl.st.rdl, fresh = time.Time{}, false
				continue
			}
		}
		if err == errTooLarge {
			cl.countEnd(&cl.p.stats.clientErr) // closed for its request, as a protocol error
			cl.leaving = cl.send(proto.tooLarge(nil), nil)
			return
		}
		if err != nil {
			if werr := cl.outputErr(); werr != nil {
				err = werr // the writer failed and closed the connection
			}
			cl.leaving = err == io.EOF
			cl.countErr(err)
			return
		}
		if cl.p.routing().lim.timeout > 0 {
			cl.received = time.Now()
		}
		if !cl.handle(cl.bt, proto) {
			return
		}
		if cl.p.draining.Load() {
			cl.leaving = true // its requests are answered: it may go
			return
		}
		if cl.backToLoop() {
			return true
		}
	}
}

// backToLoop drops the client's batch when it holds no bytes, and then,
// when an event loop may serve the client, puts it in the loop's set: the
// goroutine returns. A client holding part of a request keeps its
// goroutine until the rest comes.
func (cl *client) backToLoop() bool {
	if len(cl.bt.in) > 0 {
		return false
	}
	cl.dropBatch()
	if !cl.loopable() {
		return false
	}
	if !cl.st.rdl.IsZero() {
		// A loop's reads must not find a deadline passed.
		cl.st.rdl = time.Time{}
		cl.nc.SetReadDeadline(time.Time{})
	}
	return cl.p.parkerOf(cl).wait(cl)
}

// end closes the client's connection once the replies it was sent are
// written (cut short unless it is leaving), and gives back its batch.
func (cl *client) end() {
	if cl.pendingOutput() {
		if !cl.leaving {
			cl.closeConn()
		}
		cl.finishOutput()
	}
	if cl.bt != nil {
		cl.dropBatch()
	}
	cl.closeSocket()
}

// handle answers every complete request in bt.in, batch by batch, and keeps
// the incomplete rest. It returns false when the client must be closed.
func (cl *client) handle(bt *batch, proto clientProtocol) bool {
	// The requests of every round arrived with the read: their latency
	// counts from it; their calls' from when each round enqueues them.
	bt.arrived = time.Now()
	bt.queued = bt.arrived
	for {
		bt.rt = cl.p.routing().active()
		off, quit := cl.parse(bt, proto)
		bt.flushCommands(&cl.p.stats)
		if len(bt.answers) > 0 {
			cl.p.stats.requests.Add(int64(len(bt.answers)))
			bt.flush()
			cl.await()
			if cl.retryOnPrimary(bt) {
				bt.flush()
				cl.await()
			}
			if cl.p.cluster != nil {
				cl.followCluster(bt)
			}
			if !cl.writeReplies(bt, proto) {
				return false
			}
		}
		if len(bt.served) > 0 {
			// Requests without a reply (memcache noreply, quit) are done.
			bt.countServed(&cl.p.stats, time.Now())
		}
		if quit {
			cl.leaving = true
			return false
		}
		rest := copy(bt.in, bt.in[off:])
		bt.in = bt.in[:rest]
		bt.reset()
		if off == 0 || rest == 0 {
			return true
		}
		bt.queued = time.Now()
	}
}

// await waits until every call of the client is done.
func (cl *client) await() {
	for cl.pending.Load() > 0 {
		<-cl.st.wake
	}
}

// parse takes complete requests from bt.in and returns how many bytes they
// used.
func (cl *client) parse(bt *batch, proto clientProtocol) (off int, quit bool) {
	for off < len(bt.in) && len(bt.answers) < maxBatch {
		if cl.swallow > 0 {
			k := min(cl.swallow, len(bt.in)-off)
			off += k
			cl.swallow -= k
			continue
		}
		nr, na := len(bt.served), len(bt.answers)
		n, q := proto.parse(cl, bt.in[off:], bt)
		bt.answered(nr, na)
		off += n
		if q {
			return off, true
		}
		if n == 0 {
			break
		}
	}
	return off, false
}

// directSize is the reply size from which a reply is written from where it
// is (writev) instead of being copied into the batch's output.
const directSize = 32 << 10

// writeReplies writes the batch's replies in request order, in one write
// (writev when large replies are sent from where they lie). It marks the
// answers whose reply is an error or whose call failed and counts what
// became of the batch's requests (countServed) just before the write, so
// that a client that has its replies finds them counted.
func (cl *client) writeReplies(bt *batch, proto clientProtocol) bool {
	out := bt.out[:0]
	iov := bt.iov[:0]
	mark := 0
	isError := cl.p.servers.isError
	for i := range bt.answers {
		s := &bt.answers[i]
		switch {
		case s.noReply:
			s.failed = bt.callFailed(s)
		case s.n == 0:
			r := bt.local[s.local[0]:s.local[1]]
			s.failed = isError(r)
			out = append(out, r...)
		default:
			if d := proto.direct(bt, s); len(d) >= directSize {
				s.failed = isError(d)
				iov = append(iov, out[mark:len(out):len(out)], d)
				mark = len(out)
				continue
			}
			at := len(out)
			out = proto.reply(out, bt, s)
			s.failed = isError(out[at:])
		}
	}
	bt.out = out
	bt.countServed(&cl.p.stats, time.Now())
	if len(out) == 0 && len(iov) == 0 {
		return true
	}
	if len(iov) == 0 {
		return cl.send(out, nil)
	}
	iov = append(iov, out[mark:])
	ok := cl.send(nil, iov)
	clear(iov)
	bt.iov = iov[:0]
	return ok
}

// nextDeadline says whether a deadline set last should move to now+d: only
// once less than d-slack of it is left, since setting a deadline costs a
// timer update. A timeout of d then fires after between d-slack and d.
func nextDeadline(last time.Time, d time.Duration) (time.Time, bool) {
	return nextDeadlineAt(time.Now(), last, d)
}

// nextDeadlineAt is nextDeadline at the time now.
func nextDeadlineAt(now, last time.Time, d time.Duration) (time.Time, bool) {
	if last.Sub(now) > d-deadlineSlack(d) {
		return last, false
	}
	return now.Add(d), true
}

// deadlineSlack is how much earlier than configured a timeout may fire:
// a tenth of it, at most a second.
func deadlineSlack(d time.Duration) time.Duration { return min(d/10, time.Second) }

// isEOF tells a client that simply went away.
func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || sockio.IsReset(err)
}

// countEnd counts how the client's connection ends in c (client_eof or
// client_err), unless a cause is counted already: a protocol error or QUIT
// is the cause, not the failed write of its reply that may follow.
func (cl *client) countEnd(c *atomic.Int64) {
	if cl.counted.CompareAndSwap(false, true) {
		c.Add(1)
	}
}

// countErr counts a read or write error that ends the client: client_eof
// when it just went away, else client_err.
func (cl *client) countErr(err error) {
	if isEOF(err) {
		cl.countEnd(&cl.p.stats.clientEOF)
		return
	}
	cl.countEnd(&cl.p.stats.clientErr)
}
