package sockio

import (
	"net"
	"syscall"
	"unsafe"
)

// rawConn returns the raw connection of a TCP or unix socket, else nil
// (TLS, for one).
func rawConn(nc net.Conn) syscall.RawConn {
	switch nc := nc.(type) {
	case *net.TCPConn:
		if raw, err := nc.SyscallConn(); err == nil {
			return raw
		}
	case *net.UnixConn:
		if raw, err := nc.SyscallConn(); err == nil {
			return raw
		}
	}
	return nil
}

// FD returns the descriptor of nc's socket, for a Poller: nc must be a TCP
// or unix connection (for TLS, pass its NetConn). It returns -1 for any
// other connection, and on systems without a Poller.
func FD(nc net.Conn) int {
	fd := -1
	if raw := rawConn(nc); raw != nil {
		raw.Control(func(s uintptr) { fd = int(s) })
	}
	return fd
}

// rawRead reads into b (not empty) from the non-blocking socket fd without
// telling the scheduler: it cannot block.
func rawRead(fd uintptr, b []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	return int(n), errno
}

// rawWrite writes b (not empty) to the non-blocking socket fd without
// telling the scheduler: it cannot block.
func rawWrite(fd uintptr, b []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	return int(n), errno
}

// maxIovecs is how many buffers one writev takes (the system's IOV_MAX).
const maxIovecs = 1024

// iovecs is a Writer's scratch space for writev.
type iovecs []syscall.Iovec

// writev writes the first buffers of bufs (the first not empty), up to
// maxIovecs of them, to the non-blocking socket fd in one raw writev.
func (v *iovecs) writev(fd uintptr, bufs [][]byte) (int, syscall.Errno) {
	iov := (*v)[:0]
	for _, b := range bufs {
		if len(iov) == maxIovecs {
			break
		}
		if len(b) > 0 {
			e := syscall.Iovec{Base: &b[0]}
			e.SetLen(len(b))
			iov = append(iov, e)
		}
	}
	*v = iov
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	return int(n), errno
}

// reset drops the iovecs' pointers to the buffers written.
func (v *iovecs) reset() {
	clear(*v)
	*v = (*v)[:0]
}

// errReset is the system's error for a connection reset by the peer.
const errReset = syscall.ECONNRESET
