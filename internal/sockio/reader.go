package sockio

import (
	"errors"
	"io"
	"net"
	"syscall"
)

// Reader reads from a connection as nc.Read does. On the fast path (see
// the package doc) it reads inside the poller's callback with raw system
// calls. Deadlines set on the connection apply as to nc.Read.
type Reader struct {
	nc  net.Conn
	raw syscall.RawConn // nil: read through nc
	buf []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

// Init makes r a reader of nc.
func (r *Reader) Init(nc net.Conn) {
	*r = Reader{nc: nc, raw: rawConn(nc)}
	r.fn = r.read
}

// Raw reports whether r reads with raw system calls, and so may ReadWith.
// It is false for a TLS connection, a pipe, and off Linux.
func (r *Reader) Raw() bool { return r.raw != nil }

// Read reads into b (not empty), waiting until bytes come.
func (r *Reader) Read(b []byte) (int, error) {
	if r.raw == nil {
		return r.nc.Read(b)
	}
	r.buf, r.n, r.err = b, 0, nil
	err := r.raw.Read(r.fn)
	r.buf = nil
	if err != nil {
		return 0, err
	}
	return r.n, r.err
}

// read is the poller callback of Read: false means wait until readable.
func (r *Reader) read(fd uintptr) bool {
	n, ok, err := ReadInto(fd, r.buf)
	r.n, r.err = n, err
	return ok
}

// ReadWith calls fill inside the poller's callback whenever the socket may
// be readable, until fill returns true. fill chooses its buffer there and
// reads into it with ReadInto, so the caller holds no buffer while it
// waits; when ReadInto finds nothing, fill gives the buffer back and
// returns false to wait on. A deadline set on the connection ends the wait
// with os.ErrDeadlineExceeded. Only for a Reader that is Raw; fill should
// be made once (a method value kept in a field), so that a read allocates
// nothing.
func (r *Reader) ReadWith(fill func(fd uintptr) bool) error {
	return r.raw.Read(fill)
}

// ReadInto reads into b (not empty) what the socket fd holds now, without
// waiting, from inside ReadWith's fill. ok is false when nothing has come
// yet; else it returns n > 0 bytes, or io.EOF, or the read's error.
func ReadInto(fd uintptr, b []byte) (n int, ok bool, err error) {
	for {
		n, errno := rawRead(fd, b)
		switch errno {
		case 0:
			if n == 0 {
				return 0, true, io.EOF
			}
			return n, true, nil
		case syscall.EINTR:
		case syscall.EAGAIN:
			return 0, false, nil
		default:
			return 0, true, errno
		}
	}
}

// IsReset reports whether err says the peer reset the connection.
func IsReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, errReset)
}
