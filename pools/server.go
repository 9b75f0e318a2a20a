package pools

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Framer returns the length of the first complete reply in b to a request of
// the given kind: 0 with a nil error when more bytes are needed.
type Framer func(b []byte, kind uint8) (int, error)

// Options configure a Server.
type Options struct {
	Network string // "tcp" or "unix"
	Addr    string // host:port (the host is resolved on every dial) or a socket path
	Name    string // the server's identity, used in errors and logs
	// Connections is the number of connections (server_connections).
	Connections int
	// Timeout bounds dialing and each request's wait for its reply; 0 waits
	// for ever (nutcracker's default), though dialing still gives up after
	// DefaultDialTimeout.
	Timeout time.Duration
	// KeepAlive enables TCP keepalive on server connections (tcpkeepalive).
	KeepAlive bool
	// TLS, when set, wraps each connection in TLS.
	TLS *tls.Config
	// Handshake frames are sent on every new connection before any request;
	// a reply for which IsError is true fails the connection.
	Handshake [][]byte
	// Verify, if set, checks the reply to the last Handshake frame (such
	// as ROLE, which must say master); an error fails the connection.
	Verify func(reply []byte) error
	// Hello3, if set, gives the server a second set of Connections
	// connections (Conn3) that send this frame after the Handshake: for
	// Redis, HELLO 3, so that they answer in RESP3 and carry the requests
	// of RESP3 clients only. They are dialled when first used.
	Hello3 []byte
	// SessionLimit bounds the session connections open to the server
	// (Session); 0 is no bound.
	SessionLimit int
	// IsPush, if set, tells a reply that answers no request (a RESP3 push,
	// '>'): it is counted (Stats.Pushes) and dropped, never matched to a
	// call.
	IsPush func(reply []byte) bool
	// Ping is the health check request sent before an ejected server returns.
	Ping []byte
	// Frame finds the end of replies; IsError tells an error reply.
	Frame Framer
	// Need, if set, tells from the start of an incomplete reply how many
	// bytes it needs in all, so the reader grows its buffer once.
	Need    func(b []byte) int
	IsError func(reply []byte) bool
	// AutoEject ejects the server after FailureLimit consecutive failures
	// for RetryTimeout, and lets it back only after a successful Ping.
	AutoEject bool
	// FailFast answers calls for an ejected server with ErrEjected at
	// once. Without it the owner routes around ejected servers, and a call
	// that was routed just before the ejection still goes to the server.
	FailFast     bool
	FailureLimit int
	RetryTimeout time.Duration
	// OnStateChange is called, from the goroutine that noticed, whenever the
	// server is ejected or comes back.
	OnStateChange func()
	// OnFailure, if set, is called after each failed connection (a dial,
	// a health check, a connection that broke), from the goroutine that
	// noticed: a pool that follows failovers asks where the server is now.
	OnFailure func(err error)
	// Demoted, if set with OnDemoted, is the start of an error reply that
	// says the server is no longer what it was dialled as (-READONLY: a
	// primary turned replica). OnDemoted is called, from the connection's
	// reader, after the replies of a read that held one.
	Demoted   []byte
	OnDemoted func()
	// Refuses, if set, tells a reply by which the server refuses to
	// serve (a Redis replica loading its dataset: -LOADING): such a
	// reply marks the server down (Down) before its call is done, until
	// a connection to it or a check (Probe) succeeds.
	Refuses func(reply []byte) bool
	Logger  *slog.Logger
}

// DefaultDialTimeout bounds a dial when the pool has no timeout.
const DefaultDialTimeout = 10 * time.Second

// Stats are a server's counters, in nutcracker's terms.
type Stats struct {
	Requests, RequestBytes, Responses, ResponseBytes atomic.Int64
	ServerErr, ServerTimedout, ServerEOF             atomic.Int64
	ServerConnections                                atomic.Int64
	Connects                                         atomic.Int64 // connections ever made
	ServerEjectedAt                                  atomic.Int64 // unix microseconds, 0 when never
	// Failovers counts the moves to another address (SetAddr).
	Failovers atomic.Int64
	// Pushes counts the replies dropped because they answer no request
	// (Options.IsPush).
	Pushes atomic.Int64
	// SessionsOpen is the session connections open now (Session);
	// SessionRefusals counts the sessions refused over SessionLimit.
	SessionsOpen, SessionRefusals atomic.Int64
	// Latency is the time from each call's Enqueue to its reply.
	Latency Latency
}

// Server is one backend server and its connections.
type Server struct {
	opt  Options
	addr atomic.Pointer[string] // where it is dialled: opt.Addr until SetAddr
	// sessions are the session connections (session.go).
	sessions sessions
	// conns are the connections: opt.Connections of them, then as many
	// that say Hello3 when opt.Hello3 is set (Conn3).
	conns []*Conn
	// Stats counts this server's traffic.
	Stats Stats

	failures atomic.Int64
	ejected  atomic.Bool
	state    atomic.Int32 // stateUnknown, stateUp or stateDown (see Up and Down)
	held     atomic.Bool  // nothing is written (Hold)
	closed   atomic.Bool
	done     chan struct{}
	// ctx is cancelled by Close: it stops dials, handshakes and checks
	// under way.
	ctx     context.Context
	cancel  context.CancelFunc
	recheck chan struct{} // wakes the health check of an ejected server (SetAddr)
	// probeMu guards probing, the end of the check Probe runs (nil when
	// none runs); Close takes it, so no check starts once it waits.
	probeMu sync.Mutex
	probing chan struct{}
	// origin is the server a Dedicated one was made from: its failed
	// connections count there (and may eject it), not here.
	origin *Server
	wg     sync.WaitGroup
	log    *slog.Logger
}

// NewServer makes a server; it dials nothing until used or Preconnect.
func NewServer(opt Options) *Server {
	if opt.Connections < 1 {
		opt.Connections = 1
	}
	if opt.Network == "" {
		opt.Network = "tcp"
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{opt: opt, done: make(chan struct{}), recheck: make(chan struct{}, 1), log: opt.Logger.With("server", opt.Name)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.addr.Store(&opt.Addr)
	n := opt.Connections
	if opt.Hello3 != nil {
		n *= 2
	}
	s.conns = make([]*Conn, n)
	for i := range s.conns {
		s.conns[i] = &Conn{s: s, hello3: i >= opt.Connections}
	}
	return s
}

// Dedicated returns a new Server to the same server as s, at its address
// now and dialled as s is (TLS, handshake), with one connection of its own
// and without s's timeout, ejection and callbacks: for requests that may
// take long (a big value on its way) and must neither wait behind the
// requests of s's connections nor make them wait. Its failed connections
// count as s's (and may eject s). Close it when done.
func (s *Server) Dedicated() *Server {
	opt := s.opt
	opt.Addr = s.Addr()
	opt.Connections, opt.Timeout = 1, 0
	opt.AutoEject, opt.FailFast = false, false
	opt.OnStateChange, opt.OnFailure, opt.OnDemoted, opt.Demoted = nil, nil, nil, nil
	d := NewServer(opt)
	d.origin = s
	return d
}

// Name is the server's identity.
func (s *Server) Name() string { return s.opt.Name }

// Addr is the address the server is dialled at.
func (s *Server) Addr() string { return *s.addr.Load() }

// SetAddr moves the server to a new address (a failover): from now on its
// connections are dialled there. Each live connection to the old address
// is closed: the requests already written to it fail with ErrFailover
// (they may have run there; none is sent twice), and those still queued
// are written to the new address. It reports whether the address changed.
func (s *Server) SetAddr(addr string) bool {
	old := s.addr.Swap(&addr)
	if *old == addr {
		return false
	}
	s.log.Info("server moved", "from", *old, "to", addr)
	err := fmt.Errorf("%w: %s: moved from %s to %s; the request may have run on %s", ErrFailover, s.opt.Name, *old, addr, *old)
	for _, c := range s.conns {
		c.move(err)
	}
	s.endSessions(err)
	// Counted once no reply of the old address can come any more.
	s.Stats.Failovers.Add(1)
	// The failures were the old address's: an ejected server is checked
	// at its new address now rather than after its retry timeout.
	s.failures.Store(0)
	if s.ejected.Load() {
		select {
		case s.recheck <- struct{}{}:
		default:
		}
	}
	return true
}

// Conn returns the connection that carries the requests of the client with
// the given id: one client always uses the same connection, so its requests
// to this server stay in order.
func (s *Server) Conn(client uint64) *Conn {
	return s.conns[client%uint64(s.opt.Connections)]
}

// Conn3 is Conn among the connections that said Options.Hello3; without
// Hello3 it is Conn.
func (s *Server) Conn3(client uint64) *Conn {
	n := uint64(s.opt.Connections)
	if s.opt.Hello3 == nil {
		return s.conns[client%n]
	}
	return s.conns[n+client%n]
}

// Ejected reports whether the server is ejected.
func (s *Server) Ejected() bool { return s.ejected.Load() }

// Down reports whether the server's last connection failed (a dial, a
// health check, or a connection that broke: refused, closed by the server,
// timed out), or the server refused a request (Options.Refuses), and no
// connection to it or check of it (Probe) has succeeded since. A server
// neither dialled nor checked yet is not down, nor up.
func (s *Server) Down() bool { return s.state.Load() == stateDown }

// Up reports whether the last connection to the server or check of it
// succeeded, and it refused no request since: only then is it known to
// serve.
func (s *Server) Up() bool { return s.state.Load() == stateUp }

// Preconnect dials every connection now (those of Conn3 when first used)
// and returns the first error.
func (s *Server) Preconnect() error {
	var first error
	for _, c := range s.conns[:s.opt.Connections] {
		if err := c.connect(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Close closes every connection, fails what is queued with ErrClosed, and
// waits for the server's goroutines to end.
func (s *Server) Close() {
	// Under probeMu: a Probe that saw the server open has added to wg.
	s.probeMu.Lock()
	closed := s.closed.Swap(true)
	s.probeMu.Unlock()
	if closed {
		return
	}
	close(s.done)
	s.cancel()
	s.closeSessions()
	for _, c := range s.conns {
		c.shutdown()
	}
	s.wg.Wait()
}

// dialTo opens a connection to the server at addr, with its TLS and
// protocol handshakes. A failure counts as server_err (as nutcracker
// counts a connect that fails), unless the server is closing.
func (s *Server) dialTo(addr string, hello3 bool) (net.Conn, error) {
	nc, err := s.open(addr, s.timeout(), hello3)
	switch {
	case err == nil:
		s.state.Store(stateUp)
	case !s.closed.Load():
		s.Stats.ServerErr.Add(1)
		s.state.Store(stateDown)
	}
	return nc, err
}

// timeout bounds a dial and a handshake: the server's timeout, or
// DefaultDialTimeout without one.
func (s *Server) timeout() time.Duration {
	if s.opt.Timeout <= 0 {
		return DefaultDialTimeout
	}
	return s.opt.Timeout
}

// open connects to addr and runs the TLS and protocol handshakes, each
// within timeout, the latter with Hello3 when hello3; Close stops it.
func (s *Server) open(addr string, timeout time.Duration, hello3 bool) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout, KeepAlive: -1}
	if s.opt.KeepAlive {
		d.KeepAlive = 0
	}
	nc, err := d.DialContext(s.ctx, s.opt.Network, addr)
	if err != nil {
		return nil, err
	}
	if s.opt.TLS != nil {
		tc := tls.Client(nc, s.opt.TLS)
		tc.SetDeadline(time.Now().Add(timeout))
		if err := tc.HandshakeContext(s.ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("tls: %w", err)
		}
		tc.SetDeadline(time.Time{})
		nc = tc
	}
	// Close ends a handshake that a server which accepted and then went
	// silent (a stopped process) would keep waiting for.
	stop := context.AfterFunc(s.ctx, func() { nc.Close() })
	frames := s.opt.Handshake
	if hello3 {
		frames = append(frames[:len(frames):len(frames)], s.opt.Hello3)
	}
	err = s.handshake(nc, timeout, frames, len(s.opt.Handshake)-1, s.opt.Verify)
	if !stop() && err == nil {
		err = ErrClosed // Close closed nc
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	return nc, nil
}

// handshake sends frames and checks that none of the replies is an error,
// and that verify, if set, accepts the one to frames[last].
func (s *Server) handshake(nc net.Conn, timeout time.Duration, frames [][]byte, last int, verify func([]byte) error) error {
	if len(frames) == 0 {
		return nil
	}
	nc.SetDeadline(time.Now().Add(timeout))
	defer nc.SetDeadline(time.Time{})
	var out []byte
	for _, f := range frames {
		out = append(out, f...)
	}
	if _, err := nc.Write(out); err != nil {
		return fmt.Errorf("handshake: write: %w", err)
	}
	buf := make([]byte, 0, 512)
	for i := 0; i < len(frames); {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, cap(buf))...)[:len(buf)]
		}
		n, err := nc.Read(buf[len(buf):cap(buf)])
		if err != nil {
			return handshakeReadError(err)
		}
		buf = buf[:len(buf)+n]
		for i < len(frames) {
			m, err := s.opt.Frame(buf, 0)
			if err != nil {
				return fmt.Errorf("handshake reply: %w", err)
			}
			if m == 0 {
				break
			}
			if s.opt.IsError != nil && s.opt.IsError(buf[:m]) {
				return fmt.Errorf("handshake refused: %s", trimReply(buf[:m]))
			}
			if verify != nil && i == last {
				if err := verify(buf[:m]); err != nil {
					return err
				}
			}
			buf = buf[m:]
			i++
		}
	}
	return nil
}

// handshakeReadError says in words what a handshake's failed read means:
// a server that closed the connection (one killed, or a CLIENT KILL) is
// told as the connection reader tells it. A deadline passes unchanged (see
// Conn.dial).
func handshakeReadError(err error) error {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return err
	case errors.Is(err, io.EOF):
		return fmt.Errorf("connection closed by server during the handshake: %w", err)
	}
	return fmt.Errorf("handshake: read: %w", err)
}

// failure counts a failed connection and ejects the server at the limit.
func (s *Server) failure(err error) {
	if s.origin != nil {
		if !s.closed.Load() {
			s.origin.failure(err)
		}
		return
	}
	s.log.Warn("server failure", "err", err)
	if s.opt.OnFailure != nil && !s.closed.Load() {
		s.opt.OnFailure(err)
	}
	if !s.opt.AutoEject || s.closed.Load() {
		return
	}
	limit := int64(s.opt.FailureLimit)
	if limit < 1 {
		limit = 1
	}
	if s.failures.Add(1) < limit || s.ejected.Load() {
		return
	}
	if s.ejected.Swap(true) {
		return
	}
	s.failures.Store(0)
	s.Stats.ServerEjectedAt.Store(time.Now().UnixMicro())
	s.log.Warn("server ejected", "retry_after", s.opt.RetryTimeout)
	s.endSessions(fmt.Errorf("%w: %s", ErrEjected, s.opt.Name))
	if s.opt.OnStateChange != nil {
		s.opt.OnStateChange()
	}
	s.wg.Add(1)
	go s.healthLoop()
}

// healthLoop waits out the retry timeout, then lets the server back once a
// fresh connection answers the health check.
func (s *Server) healthLoop() {
	defer s.wg.Done()
	t := time.NewTimer(s.opt.RetryTimeout)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		case <-s.recheck:
		}
		if err := s.check(); err != nil {
			s.log.Info("server still failing its health check", "err", err)
			if s.opt.OnFailure != nil && !s.closed.Load() {
				s.opt.OnFailure(err)
			}
			t.Reset(s.opt.RetryTimeout)
			continue
		}
		s.ejected.Store(false)
		s.log.Info("server back after health check")
		if s.opt.OnStateChange != nil {
			s.opt.OnStateChange()
		}
		return
	}
}

// check dials a fresh connection and sends the health check request.
func (s *Server) check() error {
	nc, err := s.dialTo(s.Addr(), false)
	if err != nil {
		return err
	}
	defer nc.Close()
	if s.opt.Ping == nil {
		return nil
	}
	return s.handshake(nc, s.timeout(), [][]byte{s.opt.Ping}, 0, nil)
}

func trimReply(b []byte) string {
	if len(b) > 200 {
		b = b[:200]
	}
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return string(b)
}

// Queues are a server's queues at one moment, in nutcracker's terms.
type Queues struct {
	In, InBytes   int // requests (and their bytes) waiting to be written
	Out, OutBytes int // requests (and their bytes) written, waiting for replies
}

// Queues reports the server's queues now, over all its connections.
func (s *Server) Queues() Queues {
	var q Queues
	for _, c := range s.conns {
		c.mu.Lock()
		q.In += c.unwritten
		q.InBytes += len(c.out)
		for i := 1; i < len(c.pieces); i += 2 {
			q.InBytes += len(c.pieces[i])
		}
		written := c.inflight.len() - c.unwritten
		q.Out += written
		for _, call := range c.inflight.buf[c.inflight.head : c.inflight.head+written] {
			q.OutBytes += call.size()
		}
		c.mu.Unlock()
	}
	return q
}
