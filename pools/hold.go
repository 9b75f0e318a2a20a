package pools

import "time"

// Hold stops the server's connections from writing: requests queue in the
// proxy, in order, until Release. A pool following a failover holds a
// shard while it cannot yet tell which server will be its primary (the
// replica being promoted already answers as one, but the failover may
// still be aborted): a write sent to either could be lost, a write held is
// only late. Replies to requests written before go on arriving. Requests
// held do not count against the timeout until they are written.
func (s *Server) Hold() { s.held.Store(true) }

// Held reports whether the server is held (Hold).
func (s *Server) Held() bool { return s.held.Load() }

// Release ends Hold: what queued meanwhile is written, to the server's
// address now (a SetAddr while held moves the requests with it), and the
// timeout of each request held starts now.
func (s *Server) Release() {
	if !s.held.Swap(false) {
		return
	}
	now := time.Now()
	for _, c := range s.conns {
		c.resume(now)
	}
}

// resume restarts the clock of the calls queued while the connection was
// held and has them written.
func (c *Conn) resume(now time.Time) {
	c.mu.Lock()
	if n := c.inflight.len(); c.unwritten > 0 {
		for _, call := range c.inflight.buf[c.inflight.head+n-c.unwritten:] {
			call.Sent = now
		}
	}
	if c.nc == nil {
		queued := !c.dialing && (len(c.out) > 0 || len(c.pieces) > 0)
		c.dialing = c.dialing || queued
		c.mu.Unlock()
		if queued {
			c.dial()
		}
		return
	}
	if c.s.opt.Timeout > 0 && c.inflight.len() > 0 {
		c.nc.SetReadDeadline(c.inflight.peek().Sent.Add(c.s.opt.Timeout))
		c.armed = true
	}
	c.push(c.wr)
}
