package proxy

import (
	"syscall"
	"unsafe"
)

// socketReadable reports whether a read on the socket would not block: it
// has bytes, has reached EOF, or has an error to report. It peeks one byte
// without consuming it.
func socketReadable(fd uintptr, b *[1]byte) bool {
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		switch errno {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		return true
	}
}
