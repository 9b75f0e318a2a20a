package proxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardproxy/shardproxy/internal/sockio"
	"github.com/shardproxy/shardproxy/pools"
)

// client is one client connection. Its requests are read a batch at a
// time, by its event loop (loop.go) or its goroutine (serve.go); each
// batch's calls are sent, their replies written in request order once all
// are done, and the next batch read. While idle it holds no buffer.
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
	// sub is the client's subscriptions (subscriber.go), nil when it has none:
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
