package pools

import (
	"syscall"
	"unsafe"
)

// rawWrite writes b (not empty) to the non-blocking socket fd without
// telling the scheduler: it cannot block.
func rawWrite(fd uintptr, b []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	return int(n), errno
}

// rawWritev writes the buffers iov (not empty) describes to the
// non-blocking socket fd without telling the scheduler.
func rawWritev(fd uintptr, iov []syscall.Iovec) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	return int(n), errno
}

// RawRead reads into b (not empty) from the non-blocking socket fd without
// telling the scheduler: it cannot block.
func RawRead(fd uintptr, b []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	return int(n), errno
}
