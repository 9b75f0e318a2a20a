// Package sockio reads and writes the proxy's sockets, keeps the read
// buffers' size classes, and waits for idle sockets to turn readable.
//
// Linux is the fast path. A Reader or Writer over a TCP or unix connection
// reads and writes inside Go's poller callback with raw system calls
// (read, write, writev): on a non-blocking socket such a call never
// blocks, so it need not hand the thread's scheduler slot to another thread
// as an ordinary system call does, which on a busy proxy costs a thread
// wake-up and two context switches whenever a call crosses the scheduler's
// 20 µs mark. Reader.ReadWith lets the caller choose the buffer inside the
// callback, so a connection waiting for bytes holds none. A Poller is an
// epoll set in which idle sockets wait without a goroutine.
//
// Other Unix systems and Windows build with a plain fallback: reads and
// writes go through the net.Conn (Reader.Raw is false, as for TLS), and
// NewPoller returns errors.ErrUnsupported, so idle clients keep their
// goroutines.
package sockio
