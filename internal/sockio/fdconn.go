package sockio

import (
	"errors"
	"syscall"
)

// ErrWouldBlock is what a Reader or Writer over a bare descriptor (InitFD)
// returns for a read or write that would have to wait: such a socket is
// not in Go's poller, so nothing could wake the wait.
var ErrWouldBlock = errors.New("sockio: the socket is not ready and cannot be waited for")

// fdConn is a syscall.RawConn over a socket descriptor that no net.Conn
// holds (an event loop's client): Read and Write call f once and never
// wait. The descriptor is its owner's to close, never fdConn's.
type fdConn struct{ fd uintptr }

func (c fdConn) Control(f func(fd uintptr)) error { f(c.fd); return nil }

func (c fdConn) Read(f func(fd uintptr) bool) error {
	if !f(c.fd) {
		return ErrWouldBlock
	}
	return nil
}

func (c fdConn) Write(f func(fd uintptr) bool) error {
	if !f(c.fd) {
		return ErrWouldBlock
	}
	return nil
}

var _ syscall.RawConn = fdConn{}

// InitFD makes r a reader of the bare socket fd: Raw, for ReadWith only,
// whose fill is called once.
func (r *Reader) InitFD(fd int) {
	*r = Reader{raw: fdConn{uintptr(fd)}}
	r.fn = r.read
}

// InitFD makes w a writer of the bare socket fd, for TryWrite and
// TryWritev only: a write that would wait fails with ErrWouldBlock.
func (w *Writer) InitFD(fd int) {
	*w = Writer{raw: fdConn{uintptr(fd)}}
	w.fn, w.fnVec = w.write, w.writev
}
