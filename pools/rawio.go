package pools

import (
	"io"
	"net"
	"syscall"
)

// Writer writes whole buffers to a connection. On a socket it writes from
// inside the poller's callback with raw system calls (see rawWrite): a
// write to a non-blocking socket never blocks, so it need not hand the
// thread's scheduler slot to another thread as an ordinary system call
// does, which on a busy proxy costs a thread wake-up and two context
// switches whenever a long write crosses the scheduler's 20 µs mark.
// Deadlines set on the connection apply as to nc.Write.
type Writer struct {
	nc  net.Conn
	raw syscall.RawConn // nil: write through nc
	buf []byte
	err error
	try bool // a Try write: stop where the socket is full, do not wait
	fn  func(fd uintptr) bool
	// The writev state: the buffers left, and their iovecs.
	bufs  [][]byte
	iov   []syscall.Iovec
	fnVec func(fd uintptr) bool
}

// Init makes w a writer for nc.
func (w *Writer) Init(nc net.Conn) {
	*w = Writer{nc: nc, raw: rawConn(nc)}
	w.fn, w.fnVec = w.write, w.writev
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
	clear(w.iov)
	w.bufs, w.iov = nil, w.iov[:0]
	if err != nil {
		return err
	}
	return w.err
}

// TryWritev writes what the socket takes now of bufs, without waiting,
// and shortens bufs' elements by what it wrote. Without a socket (TLS) it
// writes nothing. The caller queues what is left.
func (w *Writer) TryWritev(bufs [][]byte) error {
	if w.raw == nil {
		return nil
	}
	w.try = true
	err := w.Writev(bufs)
	w.try = false
	return err
}

// TryWrite writes what the socket takes now of b, without waiting, and
// returns how much that was. Without a socket (TLS) it writes nothing.
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

// maxIovecs is how many buffers one writev takes (the system's IOV_MAX).
const maxIovecs = 1024

// writev is the poller callback of Writev.
func (w *Writer) writev(fd uintptr) bool {
	for {
		for len(w.bufs) > 0 && len(w.bufs[0]) == 0 {
			w.bufs = w.bufs[1:]
		}
		if len(w.bufs) == 0 {
			return true
		}
		w.iov = w.iov[:0]
		for _, b := range w.bufs {
			if len(w.iov) == maxIovecs {
				break
			}
			if len(b) > 0 {
				v := syscall.Iovec{Base: &b[0]}
				v.SetLen(len(b))
				w.iov = append(w.iov, v)
			}
		}
		n, errno := rawWritev(fd, w.iov)
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

// write is the poller callback: false means wait until writable.
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

// Reader reads from a connection as nc.Read does; on a socket it reads
// inside the poller's callback with raw system calls, as Writer writes.
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

// read is the poller callback: false means wait until readable.
func (r *Reader) read(fd uintptr) bool {
	for {
		n, errno := RawRead(fd, r.buf)
		switch errno {
		case 0:
			r.n = n
			if n == 0 {
				r.err = io.EOF
			}
			return true
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			r.err = errno
			return true
		}
	}
}

// rawConn returns the raw connection of a TCP or unix socket, else nil
// (TLS, for one).
func rawConn(nc net.Conn) syscall.RawConn {
	switch nc.(type) {
	case *net.TCPConn, *net.UnixConn:
		if raw, err := nc.(syscall.Conn).SyscallConn(); err == nil {
			return raw
		}
	}
	return nil
}
