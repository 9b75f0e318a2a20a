package proxy

import (
	"errors"
	"io"
	"time"

	"github.com/shardproxy/shardproxy/internal/sockio"
)

// A plain client (TCP or unix, not TLS) on Linux is served by its pool's
// event loops (the parkers, park.go) rather than by a goroutine of its own:
// between batches it waits in a loop's epoll set, costing its struct and
// its socket; when it turns readable the loop reads what came, parses it
// and enqueues the calls, and the goroutine that completes the batch's last
// call (a server connection's reader, most often) writes the replies,
// takes the next complete requests, and puts the client back in the set.
// No goroutine is woken or parked per request, and no read finds nothing.
//
// What may block is not done on a loop: a request that starts a session
// (MULTI, WATCH, a blocking command), a subscription, a HELLO that may
// switch the protocol, a key of a migration, or a cluster pool's redirects
// are served by a goroutine (client.serve), which gives the client back to
// the loop once it is plain again. A TLS client, and every client on other
// systems or with client_park_after 0, keeps the goroutine path.

// loopable says the client may be served by an event loop now.
func (cl *client) loopable() bool {
	p := cl.p
	return cl.fd >= 0 && (cl.st == nil || cl.st.rd.Raw()) && p.parks.Load() != nil && p.cluster == nil &&
		cl.sess == nil && cl.sub.Load() == nil && !p.draining.Load() && p.routing().lim.parkAfter > 0
}

// serveReady serves the client an event loop found readable: it reads
// what came and runs the rounds of requests it completes. It never
// blocks. The server connections its requests went to are added to
// pk.dirty: the loop writes them once it has served every client it found
// readable, so that one write carries the requests of them all.
func (cl *client) serveReady(pk *parker) {
	if !cl.loopable() {
		cl.p.resume(cl)
		return
	}
	fresh := cl.bt == nil
	if fresh {
		cl.bt = getBatch()
	}
	bt := cl.bt
	if !cl.grow() {
		if fresh {
			cl.p.stats.clientBuffered.Add(1)
		}
		cl.countEnd(&cl.p.stats.clientErr) // closed for its request, as a protocol error
		cl.leaving = cl.send(cl.p.proto.tooLarge(nil), nil)
		cl.endLoop()
		return
	}
	n, ok, err := cl.readReady()
	if !ok { // nothing came after all
		if fresh {
			cl.bt = nil
			bt.release()
		}
		cl.waitInLoop()
		return
	}
	if fresh {
		cl.p.stats.clientBuffered.Add(1)
	}
	if err != nil {
		if werr := cl.outputErr(); werr != nil {
			err = werr // the writer failed and closed the connection
		}
		cl.leaving = errors.Is(err, io.EOF)
		cl.countErr(err)
		cl.endLoop()
		return
	}
	bt.in = bt.in[:len(bt.in)+n]
	now := time.Now()
	if cl.p.routing().lim.timeout > 0 {
		cl.received = now
	}
	bt.arrived, bt.queued = now, now
	cl.runRounds(pk)
}

// readReady reads into the batch what the socket holds, without waiting;
// ok is false when it held nothing. A bare descriptor is read directly
// (only its owner closes it, clientsock.go); a net.Conn through its raw
// access, which holds it open meanwhile: a descriptor another goroutine
// closed is never read.
func (cl *client) readReady() (n int, ok bool, err error) {
	bt := cl.bt
	if cl.st == nil {
		return sockio.ReadInto(uintptr(cl.fd), bt.in[len(bt.in):cap(bt.in)])
	}
	st := cl.st
	st.n, st.err, st.again = 0, nil, false
	if err := st.rd.ReadWith(st.tryReadFn); err != nil {
		return 0, true, err
	}
	return st.n, !st.again, st.err
}

// tryRead is readReady's read (sockio's ReadWith callback): it never
// waits.
func (cl *client) tryRead(fd uintptr) bool {
	bt, st := cl.bt, cl.st
	n, ok, err := sockio.ReadInto(fd, bt.in[len(bt.in):cap(bt.in)])
	st.n, st.err, st.again = n, err, !ok
	return true
}

// runRounds runs rounds of the client's batch (handle's, one at a time)
// until one waits for its calls, the batch needs more bytes, or the client
// ends or goes to a goroutine. On a loop (pk not nil) the connections the
// calls went to are written when the loop's turn ends (see serveReady);
// elsewhere (the goroutine that ended the last round's last call) at once.
func (cl *client) runRounds(pk *parker) {
	for {
		bt := cl.bt
		bt.rt = cl.p.routing().active()
		if !cl.loopable() || bt.rt.mig != nil {
			cl.p.resume(cl)
			return
		}
		cl.async, cl.handOff, cl.retried = true, false, false
		// Held while the calls are sent: no call's end may finish the
		// round before its last call is sent.
		cl.pending.Add(1)
		cl.off, cl.quit = cl.parse(bt, cl.p.proto)
		bt.flushCommands(&cl.p.stats)
		if len(bt.answers) > 0 {
			cl.p.stats.requests.Add(int64(len(bt.answers)))
			if pk != nil {
				pk.dirty = append(pk.dirty, bt.conns...)
			} else {
				bt.flushAsync()
			}
		}
		if cl.pending.Add(-1) > 0 {
			return // the last call's end goes on (CallDone)
		}
		if !cl.finishRound() {
			return
		}
	}
}

// roundDone goes on with the client's round once its last call is done.
func (cl *client) roundDone() {
	if cl.finishRound() {
		cl.runRounds(nil)
	}
}

// finishRound writes the replies of a round whose calls are done (after
// sending the reads a replica did not serve to their primaries, once) and
// reports whether another round follows at once. Otherwise the client
// waits in its loop again, or waits for calls, or went to a goroutine, or
// ended.
func (cl *client) finishRound() bool {
	bt := cl.bt
	proto := cl.p.proto
	if len(bt.answers) > 0 {
		if !cl.retried && len(bt.replicaReads) > 0 {
			cl.retried = true
			cl.pending.Add(1)
			if cl.retryOnPrimary(bt) {
				bt.flushAsync()
			}
			if cl.pending.Add(-1) > 0 {
				return false // its last call's end goes on
			}
		}
		if !cl.writeReplies(bt, proto) {
			cl.endLoop()
			return false
		}
	}
	if len(bt.served) > 0 {
		bt.countServed(&cl.p.stats, time.Now())
	}
	if cl.quit {
		cl.leaving = true
		cl.endLoop()
		return false
	}
	off := cl.off
	rest := copy(bt.in, bt.in[off:])
	bt.in = bt.in[:rest]
	bt.reset()
	if cl.p.draining.Load() {
		cl.leaving = true // its requests are answered: it may go
		cl.endLoop()
		return false
	}
	if off > 0 && rest > 0 {
		bt.queued = time.Now()
		return true
	}
	if cl.handOff {
		cl.p.resume(cl) // a request that needs a goroutine is next
		return false
	}
	if rest == 0 {
		cl.dropBatch()
	}
	cl.waitInLoop()
	return false
}

// waitInLoop puts the client back in its loop's set, or gives it a
// goroutine when the loop has closed.
func (cl *client) waitInLoop() {
	cl.async = false
	if !cl.p.parkerOf(cl).add(cl) {
		cl.p.resume(cl)
	}
}

// endLoop closes a client served by a loop, as serve does when it returns:
// the replies it was sent are still written (in a goroutine of its own
// when some wait, as a loop must not wait for them).
func (cl *client) endLoop() {
	cl.async = false
	if !cl.pendingOutput() {
		cl.end()
		cl.p.forget(cl)
		return
	}
	p := cl.p
	p.mu.Lock()
	if p.closed { // its connection is closed: the writer ends at once
		p.mu.Unlock()
		cl.end()
		p.forget(cl)
		return
	}
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		cl.end()
		p.forget(cl)
	}()
}

// flushAsync writes every connection the batch used, without blocking.
func (bt *batch) flushAsync() {
	for _, c := range bt.conns {
		c.FlushAsync()
	}
}
