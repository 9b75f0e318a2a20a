package proxy

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shardproxy/shardproxy/pools"
)

// client is one client connection: a single goroutine reads a batch of
// requests, sends them, waits for every reply, writes the replies in order,
// and reads again. While idle it holds no buffer.
type client struct {
	id   uint64
	nc   net.Conn
	raw  syscall.RawConn // nil when the connection cannot wait without a buffer (TLS)
	p    *pool
	wake chan struct{}
	// pending counts calls not yet done; the last one to finish wakes the
	// client.
	pending atomic.Int64

	// Per-client protocol state.
	authed bool
	name   string
	peek   [1]byte
}

// CallDone implements pools.Doner.
func (cl *client) CallDone(*pools.Call) {
	if cl.pending.Add(-1) == 0 {
		select {
		case cl.wake <- struct{}{}:
		default:
		}
	}
}

func newClient(p *pool, nc net.Conn, id uint64) *client {
	cl := &client{id: id, nc: nc, p: p, wake: make(chan struct{}, 1)}
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			cl.raw = raw
		}
	}
	return cl
}

// waitReadable blocks until the connection has bytes to read (or is
// closed), without holding a buffer. Go's poller forgets a readiness it saw
// before the wait starts, so the callback first peeks at the socket and
// waits only when it is empty.
func (cl *client) waitReadable() error {
	if cl.raw == nil {
		return nil
	}
	var ready bool
	err := cl.raw.Read(func(fd uintptr) bool {
		ready = socketReadable(fd, &cl.peek)
		return ready
	})
	return err
}

// serve runs the client until it leaves, errs, or the pool closes.
func (cl *client) serve() {
	var bt *batch
	defer func() {
		if bt != nil {
			bt.release()
		}
		cl.nc.Close()
	}()
	proto := cl.p.proto
	idle := cl.p.idleTimeout
	for {
		if idle > 0 {
			cl.nc.SetReadDeadline(time.Now().Add(idle))
		}
		if bt == nil {
			if err := cl.waitReadable(); err != nil {
				cl.p.countClientErr(err)
				return
			}
			bt = getBatch()
		}
		if len(bt.in) == cap(bt.in) {
			if cap(bt.in) >= cl.p.maxRequest {
				bt.out = proto.tooLarge(bt.out[:0])
				cl.nc.Write(bt.out)
				return
			}
			bt.in = append(bt.in, make([]byte, cap(bt.in))...)[:len(bt.in)]
		}
		n, err := cl.nc.Read(bt.in[len(bt.in):cap(bt.in)])
		bt.in = bt.in[:len(bt.in)+n]
		if err != nil {
			cl.p.countClientErr(err)
			return
		}
		if !cl.handle(bt, proto) {
			return
		}
		if len(bt.in) == 0 {
			bt.release()
			bt = nil
		}
	}
}

// handle answers every complete request in bt.in, batch by batch, and keeps
// the incomplete rest. It returns false when the client must be closed.
func (cl *client) handle(bt *batch, proto protocol) bool {
	for {
		off, quit := cl.parse(bt, proto)
		if len(bt.slots) > 0 {
			cl.p.stats.requests.Add(int64(len(bt.slots)))
			bt.flush()
			for cl.pending.Load() > 0 {
				<-cl.wake
			}
			if !cl.writeReplies(bt, proto) {
				return false
			}
		}
		if quit {
			return false
		}
		rest := copy(bt.in, bt.in[off:])
		bt.in = bt.in[:rest]
		bt.reset()
		if off == 0 || rest == 0 {
			return true
		}
	}
}

// parse takes complete requests from bt.in and returns how many bytes they
// used.
func (cl *client) parse(bt *batch, proto protocol) (off int, quit bool) {
	for off < len(bt.in) && len(bt.slots) < maxBatch {
		n, q := proto.parse(cl, bt.in[off:], bt)
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

// writeReplies writes the batch's replies in request order.
func (cl *client) writeReplies(bt *batch, proto protocol) bool {
	out := bt.out[:0]
	for i := range bt.slots {
		s := &bt.slots[i]
		if s.noReply {
			continue
		}
		if s.n == 0 {
			out = append(out, bt.local[s.local[0]:s.local[1]]...)
			continue
		}
		out = proto.reply(out, bt, s)
	}
	bt.out = out
	if len(out) == 0 {
		return true
	}
	if wt := cl.p.writeTimeout; wt > 0 {
		cl.nc.SetWriteDeadline(time.Now().Add(wt))
	}
	if _, err := cl.nc.Write(out); err != nil {
		cl.p.countClientErr(err)
		return false
	}
	return true
}

// isEOF tells a client that simply went away.
func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET)
}
