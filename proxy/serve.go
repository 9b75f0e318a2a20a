package proxy

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"time"

	"github.com/shardproxy/shardproxy/internal/sockio"
)

// A client with a goroutine: a TLS client, every client off Linux or with
// client_park_after 0, and a plain client while it needs one (a
// transaction, a blocking command, a subscription; see loop.go). Its
// goroutine reads a batch, sends its calls, waits for every reply (await),
// writes the replies in order and reads again; after client_park_after of
// silence it parks (park.go), and a plain client goes back to its event
// loop as soon as it is plain again (backToLoop).

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
	if !cl.loopable() || cl.p.routing().active().mig != nil {
		// While a migration is configured a request may wait for its
		// keys to move: the client keeps its goroutine, as a loop would
		// hand each request back to one.
		return false
	}
	if !cl.st.rdl.IsZero() {
		// A loop's reads must not find a deadline passed.
		cl.st.rdl = time.Time{}
		cl.nc.SetReadDeadline(time.Time{})
	}
	return cl.p.parkerOf(cl).add(cl)
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

// await waits until every call of the client is done.
func (cl *client) await() {
	for cl.pending.Load() > 0 {
		<-cl.st.wake
	}
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
