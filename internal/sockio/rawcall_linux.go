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

// Accept takes one connection off the listening socket rc (a TCP or unix
// listener's raw connection) as a bare non-blocking descriptor that Go's
// poller does not hold, waiting in the poller for one to come; the
// listener's deadline and Close end the wait, as they end an Accept.
func Accept(rc syscall.RawConn) (int, error) {
	fd, aerr := -1, error(nil)
	err := rc.Read(func(s uintptr) bool {
		for {
			nfd, _, err := syscall.Accept4(int(s), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
			switch err {
			case nil:
				fd = nfd
				return true
			case syscall.EINTR, syscall.ECONNABORTED:
				continue
			case syscall.EAGAIN:
				return false
			}
			aerr = err
			return true
		}
	})
	if err != nil {
		return -1, err
	}
	return fd, aerr
}

// SetTCPOptions sets TCP_NODELAY on the TCP socket fd and, with keepalive,
// keepalive probes as Go's net.Conn.SetKeepAlive sets them (15 s idle, 15
// s apart).
func SetTCPOptions(fd int, keepalive bool) {
	syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	if keepalive {
		syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1)
		syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, 15)
		syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, 15)
	}
}

// Shutdown shuts the socket fd down both ways: a read of it returns EOF,
// and a poller waiting on it reports it.
func Shutdown(fd int) { syscall.Shutdown(fd, syscall.SHUT_RDWR) }

// CloseFD closes the bare socket descriptor fd.
func CloseFD(fd int) error { return syscall.Close(fd) }

// Peer returns the addresses of the bare socket fd: its peer's and its
// own, as a net.Conn gives them.
func Peer(fd int) (remote, local net.Addr) {
	rsa, _ := syscall.Getpeername(fd)
	lsa, _ := syscall.Getsockname(fd)
	return sockaddr(rsa), sockaddr(lsa)
}

// sockaddr converts a socket address for Peer.
func sockaddr(sa syscall.Sockaddr) net.Addr {
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return &net.TCPAddr{IP: append(net.IP(nil), sa.Addr[:]...), Port: sa.Port}
	case *syscall.SockaddrInet6:
		return &net.TCPAddr{IP: append(net.IP(nil), sa.Addr[:]...), Port: sa.Port}
	case *syscall.SockaddrUnix:
		return &net.UnixAddr{Name: sa.Name, Net: "unix"}
	}
	return &net.UnixAddr{Net: "unix"}
}

// Iovecs is scratch space for TryWritevFD, kept between calls so that a
// write allocates nothing.
type Iovecs struct{ v iovecs }

// TryWriteFD writes what the bare socket fd takes now of b, without
// waiting, and returns how much that was.
func TryWriteFD(fd int, b []byte) (int, error) {
	w := 0
	for len(b) > 0 {
		n, errno := rawWrite(uintptr(fd), b)
		switch errno {
		case 0:
			b, w = b[n:], w+n
		case syscall.EINTR:
		case syscall.EAGAIN:
			return w, nil
		default:
			return w, errno
		}
	}
	return w, nil
}

// TryWritevFD writes what the bare socket fd takes now of bufs, without
// waiting, and shortens bufs' elements by what it wrote.
func TryWritevFD(fd int, bufs [][]byte, scratch *Iovecs) error {
	defer scratch.v.reset()
	for {
		for len(bufs) > 0 && len(bufs[0]) == 0 {
			bufs = bufs[1:]
		}
		if len(bufs) == 0 {
			return nil
		}
		n, errno := scratch.v.writev(uintptr(fd), bufs)
		switch errno {
		case 0:
			for n > 0 {
				k := min(n, len(bufs[0]))
				bufs[0] = bufs[0][k:]
				n -= k
				if len(bufs[0]) == 0 {
					bufs = bufs[1:]
				}
			}
		case syscall.EINTR:
		case syscall.EAGAIN:
			return nil
		default:
			return errno
		}
	}
}
