package sockio

import (
	"net"
	"syscall"
)

// Writer writes whole buffers to a connection. On the fast path (see the
// package doc) it writes inside the poller's callback with raw system
// calls. Deadlines set on the connection apply as to nc.Write.
type Writer struct {
	nc  net.Conn
	raw syscall.RawConn // nil: write through nc
	buf []byte
	err error
	try bool // a Try write: stop where the socket is full, do not wait
	fn  func(fd uintptr) bool
	// The writev state: the buffers left, and their iovecs.
	bufs  [][]byte
	iov   iovecs
	fnVec func(fd uintptr) bool
}

// Init makes w a writer for nc.
func (w *Writer) Init(nc net.Conn) {
	*w = Writer{nc: nc, raw: rawConn(nc)}
	w.fn, w.fnVec = w.write, w.writev
}

// Write writes all of b, or returns why it could not.
func (w *Writer) Write(b []byte) error {
	if w.raw == nil || len(b) == 0 {
		_, err := w.nc.Write(b)
		return err
	}
	w.buf, w.err = b, nil
	err := w.raw.Write(w.fn)
	w.buf = nil
	if err != nil {
		return err
	}
	return w.err
}

// TryWrite writes what the socket takes now of b, without waiting, and
// returns how much that was. Without raw system calls (TLS, off Linux) it
// writes nothing: the caller queues b for a goroutine that calls Write.
func (w *Writer) TryWrite(b []byte) (int, error) {
	if w.raw == nil || len(b) == 0 {
		return 0, nil
	}
	w.buf, w.err, w.try = b, nil, true
	err := w.raw.Write(w.fn)
	n := len(b) - len(w.buf)
	w.buf, w.try = nil, false
	if err != nil {
		return n, err
	}
	return n, w.err
}

// write is the poller callback of Write: false means wait until writable.
func (w *Writer) write(fd uintptr) bool {
	for len(w.buf) > 0 {
		n, errno := rawWrite(fd, w.buf)
		switch errno {
		case 0:
			w.buf = w.buf[n:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			return w.try
		default:
			w.err = errno
			return true
		}
	}
	return true
}

// Writev writes all of bufs, in order, in as few system calls as it can.
// It shortens bufs' elements as they are written (their bytes are left
// alone).
func (w *Writer) Writev(bufs [][]byte) error {
	if w.raw == nil {
		nb := net.Buffers(bufs)
		_, err := nb.WriteTo(w.nc)
		return err
	}
	w.bufs, w.err = bufs, nil
	err := w.raw.Write(w.fnVec)
	w.iov.reset()
	w.bufs = nil
	if err != nil {
		return err
	}
	return w.err
}

// TryWritev writes what the socket takes now of bufs, without waiting,
// and shortens bufs' elements by what it wrote. Without raw system calls
// (TLS, off Linux) it writes nothing. The caller queues what is left.
func (w *Writer) TryWritev(bufs [][]byte) error {
	if w.raw == nil {
		return nil
	}
	w.try = true
	err := w.Writev(bufs)
	w.try = false
	return err
}

// writev is the poller callback of Writev.
func (w *Writer) writev(fd uintptr) bool {
	for {
		for len(w.bufs) > 0 && len(w.bufs[0]) == 0 {
			w.bufs = w.bufs[1:]
		}
		if len(w.bufs) == 0 {
			return true
		}
		n, errno := w.iov.writev(fd, w.bufs)
		switch errno {
		case 0:
			for n > 0 {
				k := min(n, len(w.bufs[0]))
				w.bufs[0] = w.bufs[0][k:]
				n -= k
				if len(w.bufs[0]) == 0 {
					w.bufs = w.bufs[1:]
				}
			}
		case syscall.EINTR:
		case syscall.EAGAIN:
			return w.try
		default:
			w.err = errno
			return true
		}
	}
}
