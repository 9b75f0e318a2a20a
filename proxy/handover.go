package proxy

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/internal/sockio"
	"github.com/shardproxy/shardproxy/listeners"
)

// A reload can move a listen address from one pool to another: a removed
// pool's address given to an added one (a rename), a changed pool's old
// address taken by another pool, or a pool's own socket kept under other
// client TLS. The listening socket is then handed over, never closed and
// bound again: the old accept loop stops at a deadline set in the past,
// the new one accepts on the same socket, and a connect that arrives in
// between waits in the socket's backlog instead of being refused.

// listener is a pool's listening socket and what its accept loop accepts
// on. Each accept loop has a listener of its own: a handover makes a new
// one over the same socket.
type listener struct {
	sock net.Listener // the socket: *net.TCPListener, *net.UnixListener or *listeners.MovedListener
	ln   net.Listener // sock, or TLS over it
	// rawFile is a copy of a plain socket's descriptor, and raw its raw
	// connection, for accepting bare descriptors (acceptRaw): a
	// listener's own raw connection cannot wait. nil over TLS and where
	// there are no event loops.
	rawFile *os.File
	raw     syscall.RawConn
	closed  atomic.Bool // Close was called
	// halting asks the accept loop to return at the socket's deadline
	// instead of accepting on; done is closed when it has returned (nil
	// until it starts).
	halting atomic.Bool
	done    chan struct{}
}

// newListener accepts on sock, speaking TLS with tc when it is not nil.
func newListener(sock net.Listener, tc *tls.Config) *listener {
	l := &listener{sock: sock, ln: sock}
	if tc != nil {
		l.ln = tls.NewListener(sock, tc)
	} else if fl, ok := sock.(interface{ File() (*os.File, error) }); ok && sockio.Loops {
		if f, err := fl.File(); err == nil {
			if rc, err := f.SyscallConn(); err == nil {
				l.rawFile, l.raw = f, rc
			} else {
				f.Close()
			}
		}
	}
	return l
}

// Addr is the socket's address.
func (l *listener) Addr() net.Addr { return l.sock.Addr() }

// Close closes the socket, which ends its accept loop.
func (l *listener) Close() error {
	l.closed.Store(true)
	l.closeRaw()
	return l.sock.Close()
}

// closeRaw closes the copy of the socket's descriptor, if any: the socket
// is closed once the listener's own is too.
func (l *listener) closeRaw() {
	if l.rawFile != nil {
		l.rawFile.Close()
	}
}

// deadliner is a socket whose Accept a deadline can interrupt.
type deadliner interface{ SetDeadline(time.Time) error }

// handable says l's socket can be handed over: its accept loop can be
// stopped without closing it.
func (l *listener) handable() bool {
	_, ok := l.sock.(deadliner)
	return ok
}

// halt stops l's accept loop without closing its socket, and returns once
// the loop has returned. A connection the loop accepted before it stopped
// stays its pool's client.
func (l *listener) halt() {
	if l.done == nil {
		return // no loop started
	}
	d := l.sock.(deadliner)
	l.halting.Store(true)
	d.SetDeadline(time.Unix(1, 0))
	if l.rawFile != nil {
		l.rawFile.SetReadDeadline(time.Unix(1, 0))
	}
	<-l.done
	d.SetDeadline(time.Time{})
}

// serve accepts clients on l until its socket closes or a handover halts
// it.
func (p *pool) serve(l *listener) {
	defer p.wg.Done()
	defer close(l.done)
	var delay time.Duration
	for {
		var nc net.Conn
		var err error
		if l.raw != nil && p.loopsServe() {
			var fd int
			if fd, err = sockio.Accept(l.raw); err == nil {
				delay = 0
				p.acceptRaw(fd)
				continue
			}
		} else {
			nc, err = l.ln.Accept()
		}
		if err != nil {
			if l.closed.Load() || errors.Is(err, net.ErrClosed) || (l.halting.Load() && errors.Is(err, os.ErrDeadlineExceeded)) {
				return
			}
			// Out of file descriptors and the like: back off, keep serving.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			p.log.Warn("accept", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		p.accept(nc)
	}
}

// startServing starts the accept loop on l, the pool's listener. The
// caller holds p.mu.
func (p *pool) startServing(l *listener) {
	l.done = make(chan struct{})
	p.wg.Add(1)
	go p.serve(l)
}

// handover is a listening socket that passes, at commit, from the pool
// that lets go of its address to the pool that takes it (the same pool
// when only its client TLS or socket permissions change).
type handover struct {
	from *pool
	l    *listener // from's listener, whose socket passes
	to   *config.Pool
}

// take halts the accept loop of the socket h passes, detaches it from
// the pool that gives it, and returns a listener over it for the pool
// that takes it, speaking TLS with tc when it is not nil. A unix socket
// takes the new permissions when they are set.
func (h *handover) take(tc *tls.Config) *listener {
	h.l.halt()
	h.l.closeRaw()
	from := h.from
	from.mu.Lock()
	if from.ln == h.l {
		from.ln = nil // the socket is no longer from's to close
	}
	from.mu.Unlock()
	if nl := h.to.Listen; nl.Network == "unix" && nl.Perm != 0 {
		if err := os.Chmod(nl.Addr, nl.Perm); err != nil {
			from.log.Error("reload: socket permissions", "listen", nl.Addr, "err", err)
		}
	}
	return newListener(h.l.sock, tc)
}

// releasing is a listener that a reload takes from its pool: the pool
// leaves, or moves to another address, or changes how it listens.
type releasing struct {
	from *pool
	l    *listener
}

// claim finds among rel the socket listening where pc listens, and when
// there is one, removes it from rel and returns its handover.
func claim(rel []releasing, pc *config.Pool) ([]releasing, *handover) {
	for i, r := range rel {
		if listeners.SameAddress(r.l.Addr(), pc.Listen) {
			rest := append(rel[:i:i], rel[i+1:]...)
			return rest, &handover{from: r.from, l: r.l, to: pc}
		}
	}
	return rel, nil
}
