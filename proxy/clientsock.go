package proxy

import (
	"crypto/tls"
	"net"
	"os"
	"time"

	"github.com/shardproxy/shardproxy/internal/sockio"
)

// A client's socket is a net.Conn (TLS, a client with a goroutine, every
// client off Linux) or, for a plain client an event loop serves from its
// accept (acceptRaw), a bare descriptor that Go's poller does not hold:
// the loop's epoll set is the only one it is in. Such a client takes a
// net.Conn over its socket (attach) when it needs a goroutine. Only the
// client's owner (its goroutine, its loop, or the parker holding it)
// closes the socket (closeSocket); other goroutines shut it down
// (shutdown), or close a net.Conn (closeConn), so that a descriptor
// number is never used after its close. sockMu guards nc, fd and closed
// against those other goroutines.

// newRawClient makes the client of the bare socket fd.
func newRawClient(p *pool, fd int, id uint64) *client {
	return &client{id: id, fd: fd, p: p}
}

// attach gives a client on a bare descriptor a net.Conn over its socket,
// for its goroutine or its output's writer; the descriptor leaves its
// loop's set, and the client's fd becomes the net.Conn's. It returns
// false when the socket is closed or net refuses it (the client is then
// closed).
func (cl *client) attach() bool {
	if cl.nc != nil {
		return true
	}
	if cl.polled {
		cl.p.parkerOf(cl).remove(cl)
	}
	cl.sockMu.Lock()
	defer cl.sockMu.Unlock()
	if cl.closed {
		return false
	}
	f := os.NewFile(uintptr(cl.fd), "client")
	nc, err := net.FileConn(f) // a copy of the descriptor, in Go's poller
	f.Close()
	if err != nil {
		cl.closed = true
		cl.p.log.Debug("client socket", "err", err)
		return false
	}
	cl.nc, cl.fd, cl.st = nc, sockio.FD(nc), newStream(cl, nc)
	return true
}

// closeConn closes the connection from a goroutine other than the
// client's own. A TLS connection is closed without its close_notify alert,
// whose write could hold the closer for seconds on a client that does not
// read. A bare descriptor is shut down, for its owner to close.
func (cl *client) closeConn() {
	cl.sockMu.Lock()
	defer cl.sockMu.Unlock()
	switch {
	case cl.closed:
	case cl.nc == nil:
		sockio.Shutdown(cl.fd)
	default:
		closeNetConn(cl.nc)
	}
}

// shutdown ends the client's connection from another goroutine without
// closing it (see subscriber.fail and the output's writer): the client's
// reader (its goroutine or its loop) then ends, and closes it.
func (cl *client) shutdown() {
	cl.sockMu.Lock()
	defer cl.sockMu.Unlock()
	if cl.closed {
		return
	}
	if cl.nc == nil {
		sockio.Shutdown(cl.fd)
		return
	}
	nc := cl.nc
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	hc, ok := nc.(interface {
		CloseRead() error
		CloseWrite() error
	})
	if !ok {
		closeNetConn(cl.nc)
		return
	}
	hc.CloseRead()
	hc.CloseWrite()
}

// closeSocket closes the client's socket, by its owner.
func (cl *client) closeSocket() {
	cl.sockMu.Lock()
	defer cl.sockMu.Unlock()
	if cl.closed {
		return
	}
	cl.closed = true
	if cl.nc == nil {
		sockio.CloseFD(cl.fd)
		return
	}
	closeNetConn(cl.nc)
}

// closeNetConn closes nc; a TLS connection without its close_notify alert.
func closeNetConn(nc net.Conn) {
	if tc, ok := nc.(*tls.Conn); ok {
		tc.NetConn().Close()
		return
	}
	nc.Close()
}

// addrs returns the client's address and the proxy's, as CLIENT LIST
// shows them.
func (cl *client) addrs() (remote, local net.Addr) {
	cl.sockMu.Lock()
	defer cl.sockMu.Unlock()
	if cl.nc != nil {
		return cl.nc.RemoteAddr(), cl.nc.LocalAddr()
	}
	if cl.closed {
		return &net.TCPAddr{}, &net.TCPAddr{}
	}
	return sockio.Peer(cl.fd)
}

// remoteOf is the client's address, for logs.
func remoteOf(cl *client) string {
	if r, _ := cl.addrs(); r != nil {
		return r.String()
	}
	return ""
}

// wakeReader ends the wait of a client's goroutine for its next request
// (a pool leaving); a client on a bare descriptor has no goroutine to
// wake.
func (cl *client) wakeReader() {
	cl.sockMu.Lock()
	defer cl.sockMu.Unlock()
	if cl.nc != nil && !cl.closed {
		cl.nc.SetReadDeadline(time.Now())
	}
}
