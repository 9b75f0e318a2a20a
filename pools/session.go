package pools

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// A session connection is a connection to the server that one client has
// to itself for a while: a transaction, a blocking command. It is dialled
// as the server's shared connections are (TLS, the handshake, Hello3 for a
// RESP3 client), taken from the server's clean ones when there is one, and
// given back clean (Release) or closed (Close). At most
// Options.SessionLimit are open per server; an idle one is closed after
// sessionIdle.

// ErrTooManySessions: the server has Options.SessionLimit session
// connections open, all in use.
var ErrTooManySessions = errors.New("too many sessions")

// sessionIdle is how long a clean session connection waits for its next
// session before it is closed.
var sessionIdle = 30 * time.Second

// sessions are a server's session connections. mu is taken after no
// other lock of the server.
type sessions struct {
	mu     sync.Mutex
	idle   [2][]*SessionConn // clean ones, RESP2 and RESP3, oldest first
	inUse  map[*SessionConn]struct{}
	open   int   // idle and in use
	closed error // set by Close and SetAddr's end of the sessions
	// sweep closes the idle connections past sessionIdle while any is
	// idle (nil when none is).
	sweep *time.Timer
}

// SessionConn is a session connection (see Server.Session).
type SessionConn struct {
	s     *Server
	nc    net.Conn
	resp3 bool
	buf   []byte // bytes read and not yet returned
	off   int    // start of the unread bytes in buf
	since time.Time
	dead  error // why it ended under its owner (endSessions); guarded by sessions.mu
}

// Session returns a connection to the server that only the caller uses
// until it gives it back (Release) or closes it (Close): a clean idle one,
// or a new one. resp3 says it must have said Options.Hello3. It fails
// with ErrTooManySessions over Options.SessionLimit, with ErrUnavailable
// when the server cannot be reached.
func (s *Server) Session(resp3 bool) (*SessionConn, error) {
	ss := &s.sessions
	p := 0
	if resp3 {
		p = 1
	}
	now := time.Now()
	ss.mu.Lock()
	if ss.closed != nil {
		ss.mu.Unlock()
		return nil, ss.closed
	}
	if ss.inUse == nil {
		ss.inUse = map[*SessionConn]struct{}{}
	}
	stale := ss.expire(now)
	if n := len(ss.idle[p]); n > 0 {
		c := ss.idle[p][n-1]
		ss.idle[p] = ss.idle[p][:n-1]
		ss.inUse[c] = struct{}{}
		ss.mu.Unlock()
		closeAll(stale)
		return c, nil
	}
	if q := 1 - p; s.opt.SessionLimit > 0 && ss.open >= s.opt.SessionLimit && len(ss.idle[q]) > 0 {
		// An idle connection of the other protocol gives up its place.
		stale = append(stale, ss.idle[q][0])
		ss.idle[q] = append(ss.idle[q][:0], ss.idle[q][1:]...)
		ss.open--
	}
	if s.opt.SessionLimit > 0 && ss.open >= s.opt.SessionLimit {
		ss.mu.Unlock()
		closeAll(stale)
		s.Stats.SessionRefusals.Add(1)
		return nil, fmt.Errorf("%w: %s has %d session connections open (server_sessions)", ErrTooManySessions, s.opt.Name, s.opt.SessionLimit)
	}
	ss.open++
	ss.mu.Unlock()
	closeAll(stale)
	addr := s.Addr()
	nc, err := s.dialTo(addr, resp3)
	if err != nil {
		ss.mu.Lock()
		ss.open--
		ss.mu.Unlock()
		return nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, s.opt.Name, err)
	}
	c := &SessionConn{s: s, nc: nc, resp3: resp3}
	ss.mu.Lock()
	if ss.closed != nil || s.Addr() != addr {
		// Closed, or moved (SetAddr) while it was dialled: the
		// connection would outlive the end of the sessions there.
		err := ss.closed
		if err == nil {
			err = fmt.Errorf("%w: %s: moved from %s while a session connection was dialled", ErrFailover, s.opt.Name, addr)
		}
		ss.open--
		ss.mu.Unlock()
		nc.Close()
		return nil, err
	}
	ss.inUse[c] = struct{}{}
	ss.mu.Unlock()
	s.Stats.SessionsOpen.Add(1)
	return c, nil
}

// expire takes the idle connections unused for sessionIdle off the idle
// lists; the caller closes them (closeAll) once it has released mu.
func (ss *sessions) expire(now time.Time) []*SessionConn {
	var stale []*SessionConn
	for p := range ss.idle {
		n := 0
		for n < len(ss.idle[p]) && now.Sub(ss.idle[p][n].since) > sessionIdle {
			n++
		}
		if n > 0 {
			stale = append(stale, ss.idle[p][:n]...)
			ss.idle[p] = append(ss.idle[p][:0], ss.idle[p][n:]...)
			ss.open -= n
		}
	}
	return stale
}

// closeAll closes connections already counted out of their server's
// sessions.
func closeAll(conns []*SessionConn) {
	for _, c := range conns {
		c.nc.Close()
		c.s.Stats.SessionsOpen.Add(-1)
	}
}

// endSessions closes every session connection of the server, idle and in
// use (it moved, or was ejected); a session in use reads err. Later
// Session calls dial afresh.
func (s *Server) endSessions(err error) {
	ss := &s.sessions
	ss.mu.Lock()
	var all []*SessionConn
	for p := range ss.idle {
		all = append(all, ss.idle[p]...)
		ss.open -= len(ss.idle[p])
		ss.idle[p] = nil
	}
	inUse := make([]net.Conn, 0, len(ss.inUse))
	for c := range ss.inUse {
		c.dead = err
		inUse = append(inUse, c.nc)
	}
	ss.mu.Unlock()
	closeAll(all)
	for _, nc := range inUse {
		nc.Close() // the session's owner sees the error and closes it
	}
}

// closeSessions ends every session connection of a server being closed
// (a session in use reads ErrClosed; a reload waits for them first, up to
// its drain timeout) and refuses new ones.
func (s *Server) closeSessions() {
	s.sessions.mu.Lock()
	s.sessions.closed = ErrClosed
	if s.sessions.sweep != nil {
		s.sessions.sweep.Stop()
		s.sessions.sweep = nil
	}
	s.sessions.mu.Unlock()
	s.endSessions(ErrClosed)
}

// Write sends frames to the server.
func (c *SessionConn) Write(frames []byte) error {
	if _, err := c.nc.Write(frames); err != nil {
		return c.failed(err)
	}
	return nil
}

// ReadReply returns the server's next reply; it stays valid until the
// next ReadReply. A reply never comes for a dead or closed connection:
// that is an error, and the connection must then be closed.
func (c *SessionConn) ReadReply() ([]byte, error) {
	if c.off > 0 {
		c.buf = c.buf[:copy(c.buf, c.buf[c.off:])]
		c.off = 0
	}
	for {
		n, err := c.s.opt.Frame(c.buf, 0)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: bad reply: %w", ErrUnavailable, c.s.opt.Name, err)
		}
		if n > 0 {
			c.off = n
			return c.buf[:n], nil
		}
		if len(c.buf) == cap(c.buf) {
			c.buf = append(c.buf, make([]byte, max(4096, cap(c.buf)))...)[:len(c.buf)]
		}
		m, err := c.nc.Read(c.buf[len(c.buf):cap(c.buf)])
		if err != nil {
			return nil, c.failed(err)
		}
		c.buf = c.buf[:len(c.buf)+m]
	}
}

// Buffered reports whether a whole reply is already read and waiting:
// the next ReadReply returns it without reading the connection.
func (c *SessionConn) Buffered() bool {
	n, err := c.s.opt.Frame(c.buf[c.off:], 0)
	return n > 0 && err == nil
}

// failed turns a connection error into the error its session ends with.
func (c *SessionConn) failed(err error) error {
	c.s.sessions.mu.Lock()
	ended := c.dead
	c.s.sessions.mu.Unlock()
	if ended != nil {
		return ended
	}
	return fmt.Errorf("%w: %s: session connection: %w", ErrUnavailable, c.s.opt.Name, err)
}

// Interrupt closes the connection under a session that waits for a reply
// (a blocking command whose client left): the server forgets the session
// at once, and ReadReply returns an error. The owner still calls Close.
func (c *SessionConn) Interrupt() { c.nc.Close() }

// Release gives back a clean connection: no transaction, watched key,
// subscription or blocked command left on it, and no reply unread.
func (c *SessionConn) Release() {
	ss := &c.s.sessions
	p := 0
	if c.resp3 {
		p = 1
	}
	c.buf, c.off, c.since = c.buf[:0], 0, time.Now()
	if cap(c.buf) > 64<<10 {
		c.buf = nil
	}
	ss.mu.Lock()
	if c.dead != nil || ss.closed != nil {
		ss.mu.Unlock()
		c.Close()
		return
	}
	delete(ss.inUse, c)
	ss.idle[p] = append(ss.idle[p], c)
	if ss.sweep == nil {
		ss.sweep = time.AfterFunc(sessionIdle, c.s.sweepSessions)
	}
	ss.mu.Unlock()
}

// sweepSessions closes the idle session connections unused for
// sessionIdle, and comes back while some stay idle.
func (s *Server) sweepSessions() {
	ss := &s.sessions
	ss.mu.Lock()
	stale := ss.expire(time.Now())
	ss.sweep = nil
	if ss.closed == nil && len(ss.idle[0])+len(ss.idle[1]) > 0 {
		ss.sweep = time.AfterFunc(sessionIdle/2, s.sweepSessions)
	}
	ss.mu.Unlock()
	closeAll(stale)
}

// SessionsInUse is how many session connections are in use now.
func (s *Server) SessionsInUse() int {
	s.sessions.mu.Lock()
	defer s.sessions.mu.Unlock()
	return len(s.sessions.inUse)
}

// Close closes a connection that may not be clean.
func (c *SessionConn) Close() {
	ss := &c.s.sessions
	ss.mu.Lock()
	_, ok := ss.inUse[c]
	delete(ss.inUse, c)
	if ok {
		ss.open--
	}
	ss.mu.Unlock()
	c.nc.Close()
	if ok {
		c.s.Stats.SessionsOpen.Add(-1)
	}
}
