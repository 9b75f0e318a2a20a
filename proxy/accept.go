package proxy

import (
	"crypto/tls"
	"net"
	"time"

	"github.com/shardproxy/shardproxy/internal/sockio"
)

// accept takes a client connection its listener accepted (TCP_NODELAY,
// keepalive as the pool says): admitted, it goes to its event loop, or to
// a goroutine of its own over TLS; over client_connections it is told so
// and closed.
func (p *pool) accept(nc net.Conn) {
	sock := nc
	if tc, ok := nc.(*tls.Conn); ok {
		sock = tc.NetConn()
	}
	if tc, ok := sock.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
		if p.routing().cfg.TCPKeepalive {
			tc.SetKeepAlive(true)
		}
	}
	p.stats.clientAccepted.Add(1)
	cl := newClient(p, nc, p.nextID.Add(1))
	switch p.admit(cl) {
	case poolClosed:
		nc.Close()
	case poolFull:
		// Refuse off the accept loop: over TLS the reply needs a handshake,
		// which a silent client could otherwise stall.
		refuse := func() {
			nc.SetDeadline(time.Now().Add(time.Second))
			nc.Write(p.proto.refuse(nil))
			nc.Close()
		}
		if !p.spawn(refuse) {
			nc.Close()
		}
	case admitted:
		if p.tls == nil && cl.loopable() {
			// Served by its event loop from its first request (loop.go).
			if !p.parkerOf(cl).add(cl) {
				p.resume(cl)
			}
			return
		}
		if !p.spawn(func() { p.run(cl, true) }) {
			cl.closeSocket()
		}
	}
}

// admission is what admit decided for a client just accepted.
type admission int

const (
	admitted   admission = iota // one of the pool's clients now
	poolClosed                  // the pool is closed
	poolFull                    // client_connections reached: refused, and counted
)

// admit makes cl, just accepted, one of the pool's clients, unless the
// pool is closed or has client_connections clients.
func (p *pool) admit(cl *client) admission {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return poolClosed
	}
	if max := p.routing().cfg.ClientConnections; max > 0 && len(p.clients) >= max {
		p.stats.clientRefused.Add(1)
		return poolFull
	}
	p.clients[cl] = struct{}{}
	p.stats.clientConnections.Add(1)
	return admitted
}

// spawn runs f in a goroutine the pool's close waits for, unless the pool
// is closed: then it returns false.
func (p *pool) spawn(f func()) bool {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false
	}
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		f()
	}()
	return true
}

// loopsServe says the pool's event loops serve its plain clients now
// (loop.go): a plain client is then accepted as a bare descriptor.
func (p *pool) loopsServe() bool {
	return p.parks.Load() != nil && p.cluster == nil && p.routing().lim.parkAfter > 0 && sockio.Loops
}

// acceptRaw takes the client of the bare socket fd (see loopsServe), into
// its event loop's set.
func (p *pool) acceptRaw(fd int) {
	rt := p.routing()
	if rt.cfg.Listen.Network != "unix" {
		sockio.SetTCPOptions(fd, rt.cfg.TCPKeepalive)
	}
	p.stats.clientAccepted.Add(1)
	cl := newRawClient(p, fd, p.nextID.Add(1))
	switch p.admit(cl) {
	case poolFull:
		// A short reply to a socket that just came: it takes it, or the
		// client learns of the refusal by the close.
		cl.tryWrite(p.proto.refuse(nil))
		fallthrough
	case poolClosed:
		cl.closeSocket()
		return
	}
	if !p.parkerOf(cl).add(cl) {
		p.resume(cl)
	}
}

// run serves cl in its goroutine (spawn's) until it leaves or parks.
func (p *pool) run(cl *client, handshake bool) {
	if handshake {
		if err := tlsHandshake(cl.nc); err != nil {
			p.log.Debug("client TLS handshake failed", "remote", cl.nc.RemoteAddr().String(), "err", err)
			p.stats.clientErr.Add(1)
			cl.nc.Close()
			p.forget(cl)
			return
		}
		// Serve in a fresh goroutine: the handshake grew this one's
		// stack, which a goroutine keeps while it lives, and an idle
		// TLS client would hold it for as long as it stays connected.
		p.resume(cl)
		return
	}
	if cl.serve() {
		return // parked: the parker holds it now
	}
	p.forget(cl)
}

// resume gives a client a goroutine (again): a parked one that turned
// readable, or one its event loop hands over.
func (p *pool) resume(cl *client) {
	if !p.spawn(func() { p.run(cl, false) }) {
		cl.closeSocket()
	}
}

// forget drops a closed client from the pool, and ends its session and
// subscriptions: it has no goroutine any more.
func (p *pool) forget(cl *client) {
	cl.endSession(false)
	cl.endSubscriptions()
	p.mu.Lock()
	delete(p.clients, cl)
	p.mu.Unlock()
	p.stats.clientConnections.Add(-1)
}
