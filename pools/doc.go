// Package pools keeps the proxy's connections to its backend servers.
//
// A Server owns a fixed number of connections (nutcracker's
// server_connections). Each connection carries requests from many clients:
// callers enqueue a Call, then Flush; the first flusher writes everything
// queued in one write while later callers only append ("write combining"),
// without waiting for the socket (a goroutine finishes a write only while the
// socket is full), and one reader goroutine per connection frames replies,
// writes what queued meanwhile and completes calls in FIFO order. A connection is dialled lazily on first use (or at start with
// preconnect), resolving the host name again on every dial, and runs the
// configured handshake (AUTH, SELECT) before it carries traffic.
//
// Failures are attached to calls: a dial error, a write or read error, or a
// timeout fails every call queued on the connection with the cause, closes
// the connection and counts a failure on the server. With ejection enabled a
// server that reaches its failure limit is ejected for the retry timeout; the
// owner learns of every change through the OnStateChange callback and
// rebuilds its ring.
package pools
