package pools

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// Conn is one connection to a server, shared by many clients. Calls are
// answered in the order they were enqueued.
type Conn struct {
	s *Server

	mu       sync.Mutex
	nc       net.Conn      // nil while down
	kick     chan struct{} // wakes the writer of nc
	quit     chan struct{} // closed when nc breaks
	dialing  bool
	out      []byte // frames queued for the next write
	spare    []byte
	inflight queue // calls written or queued, awaiting replies, in order
	// unwritten counts the calls at the tail of inflight whose frames are
	// still in out.
	unwritten int
}

// Enqueue queues a call on the connection. Nothing is written until Flush.
// The call's Done is told exactly once, possibly before Enqueue returns.
func (c *Conn) Enqueue(call *Call) {
	s := c.s
	if s.closed.Load() {
		call.fail(ErrClosed)
		return
	}
	if s.ejected.Load() {
		call.fail(fmt.Errorf("%w: %s", ErrEjected, s.opt.Name))
		return
	}
	s.Stats.Requests.Add(1)
	s.Stats.RequestBytes.Add(int64(len(call.Frame)))
	c.mu.Lock()
	c.out = append(c.out, call.Frame...)
	if call.NoReply {
		c.mu.Unlock()
		call.Done.CallDone(call)
		return
	}
	if s.opt.Timeout > 0 {
		call.sent = time.Now()
		if c.inflight.len() == 0 && c.nc != nil {
			c.nc.SetReadDeadline(call.sent.Add(s.opt.Timeout))
		}
	}
	c.inflight.push(call)
	c.unwritten++
	c.mu.Unlock()
}

// Flush hands what is queued to the connection's writer, dialing first if
// the connection is down (the dial happens in the caller's goroutine; calls
// queued meanwhile by others wait for it). The writer wakes a moment later
// and writes everything queued by every client in one write.
func (c *Conn) Flush() {
	c.mu.Lock()
	if c.dialing || len(c.out) == 0 {
		c.mu.Unlock()
		return
	}
	if c.nc == nil {
		c.mu.Unlock()
		c.connect()
		return
	}
	if c.inflight.len() > c.unwritten {
		// Replies are due: the reader hands the queue to the writer when
		// they come, so requests of many clients go in one write.
		c.mu.Unlock()
		return
	}
	kick := c.kick
	c.mu.Unlock()
	select {
	case kick <- struct{}{}:
	default:
	}
}

// writeLoop writes queued frames to nc whenever it is kicked, until nc
// breaks.
func (c *Conn) writeLoop(nc net.Conn, kick, quit chan struct{}) {
	defer c.s.wg.Done()
	for {
		select {
		case <-kick:
		case <-quit:
			return
		}
		c.mu.Lock()
		for len(c.out) > 0 && c.nc == nc {
			buf := c.out
			c.out = c.spare[:0]
			c.unwritten = 0
			c.mu.Unlock()
			_, err := nc.Write(buf)
			c.mu.Lock()
			if cap(buf) <= 1<<20 {
				c.spare = buf[:0]
			}
			if err != nil {
				c.mu.Unlock()
				c.broken(nc, fmt.Errorf("%w: %s: write: %w", ErrUnavailable, c.s.opt.Name, err))
				return
			}
		}
		c.mu.Unlock()
	}
}

// connect dials the server; on success it starts the reader and writes
// whatever was queued meanwhile, on failure it fails every queued call.
func (c *Conn) connect() error {
	c.mu.Lock()
	if c.nc != nil {
		c.mu.Unlock()
		return nil
	}
	c.dialing = true
	c.mu.Unlock()
	nc, err := c.s.dial()
	c.mu.Lock()
	c.dialing = false
	if err == nil && c.s.closed.Load() {
		nc.Close()
		err = ErrClosed
	}
	if err != nil {
		calls := c.inflight.drain()
		c.out = c.out[:0]
		c.unwritten = 0
		c.mu.Unlock()
		err = fmt.Errorf("%w: %s: %w", ErrUnavailable, c.s.opt.Name, err)
		for _, call := range calls {
			call.fail(err)
		}
		c.s.failure(err)
		return err
	}
	c.nc = nc
	c.kick = make(chan struct{}, 1)
	c.quit = make(chan struct{})
	c.s.Stats.ServerConnections.Add(1)
	if c.s.opt.Timeout > 0 && c.inflight.len() > 0 {
		nc.SetReadDeadline(c.inflight.peek().sent.Add(c.s.opt.Timeout))
	}
	c.s.wg.Add(2)
	go c.readLoop(nc)
	go c.writeLoop(nc, c.kick, c.quit)
	if len(c.out) > 0 {
		c.kick <- struct{}{}
	}
	c.mu.Unlock()
	return nil
}

// broken closes nc (if it is still the current connection) and fails every
// call queued on it with err.
func (c *Conn) broken(nc net.Conn, err error) {
	c.mu.Lock()
	if c.nc != nc {
		c.mu.Unlock()
		return
	}
	c.nc = nil
	close(c.quit)
	nc.Close()
	calls := c.inflight.drain()
	c.out = c.out[:0]
	c.unwritten = 0
	c.mu.Unlock()
	c.s.Stats.ServerConnections.Add(-1)
	for _, call := range calls {
		call.fail(err)
	}
	if errors.Is(err, ErrClosed) {
		return
	}
	if errors.Is(err, ErrTimeout) {
		c.s.Stats.ServerTimedout.Add(1)
	} else if errors.Is(err, io.EOF) {
		c.s.Stats.ServerEOF.Add(1)
	} else {
		c.s.Stats.ServerErr.Add(1)
	}
	c.s.failure(err)
}

// shutdown closes the connection for good.
func (c *Conn) shutdown() {
	c.mu.Lock()
	nc := c.nc
	c.mu.Unlock()
	if nc != nil {
		c.broken(nc, ErrClosed)
	}
}

// readLoop frames replies and completes calls in order until nc fails.
func (c *Conn) readLoop(nc net.Conn) {
	defer c.s.wg.Done()
	buf := make([]byte, 0, 16<<10)
	var ready []*Call
	var spans []int
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, cap(buf))...)[:len(buf)]
		}
		n, err := nc.Read(buf[len(buf):cap(buf)])
		if err != nil {
			if c.spuriousTimeout(nc, err) {
				continue
			}
			c.broken(nc, c.readError(err))
			return
		}
		buf = buf[:len(buf)+n]
		off := 0
		ready, spans = ready[:0], spans[:0]
		c.mu.Lock()
		for c.inflight.len() > 0 {
			m, ferr := c.s.opt.Frame(buf[off:], c.inflight.peek().Kind)
			if ferr != nil {
				c.mu.Unlock()
				c.broken(nc, fmt.Errorf("%w: %s: bad reply: %w", ErrUnavailable, c.s.opt.Name, ferr))
				return
			}
			if m == 0 {
				break
			}
			ready = append(ready, c.inflight.pop())
			spans = append(spans, off, off+m)
			off += m
		}
		if c.s.opt.Timeout > 0 {
			if c.inflight.len() > 0 {
				nc.SetReadDeadline(c.inflight.peek().sent.Add(c.s.opt.Timeout))
			} else {
				nc.SetReadDeadline(time.Time{})
			}
		}
		unexpected := c.inflight.len() == 0 && off < len(buf)
		if len(c.out) > 0 && !unexpected {
			select {
			case c.kick <- struct{}{}:
			default:
			}
		}
		c.mu.Unlock()
		if len(ready) > 0 {
			c.s.failures.Store(0)
			c.s.Stats.Responses.Add(int64(len(ready)))
			c.s.Stats.ResponseBytes.Add(int64(off))
		}
		for i, call := range ready {
			call.Reply = append(call.Reply, buf[spans[2*i]:spans[2*i+1]]...)
			call.Done.CallDone(call)
			ready[i] = nil
		}
		if unexpected {
			c.broken(nc, fmt.Errorf("%w: %s: reply without a request", ErrUnavailable, c.s.opt.Name))
			return
		}
		rest := copy(buf, buf[off:])
		buf = buf[:rest]
		if rest == 0 && cap(buf) > 1<<20 {
			buf = make([]byte, 0, 16<<10)
		}
	}
}

// spuriousTimeout reports whether a read deadline fired although no call has
// waited for longer than the timeout (the deadline moved meanwhile).
func (c *Conn) spuriousTimeout(nc net.Conn, err error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight.len() == 0 {
		nc.SetReadDeadline(time.Time{})
		return true
	}
	deadline := c.inflight.peek().sent.Add(c.s.opt.Timeout)
	if time.Now().Before(deadline) {
		nc.SetReadDeadline(deadline)
		return true
	}
	return false
}

func (c *Conn) readError(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w: %s: no reply within %v", ErrTimeout, c.s.opt.Name, c.s.opt.Timeout)
	}
	if c.s.closed.Load() {
		return ErrClosed
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %s: connection closed by server: %w", ErrUnavailable, c.s.opt.Name, err)
	}
	return fmt.Errorf("%w: %s: read: %w", ErrUnavailable, c.s.opt.Name, err)
}
