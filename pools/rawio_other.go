//go:build !linux

package pools

import (
	"syscall"
	"unsafe"
)

func rawWrite(fd uintptr, b []byte) (int, syscall.Errno) {
	n, err := syscall.Write(int(fd), b)
	return max(n, 0), errnoOf(err)
}

func rawWritev(fd uintptr, iov []syscall.Iovec) (int, syscall.Errno) {
	total := 0
	for _, v := range iov {
		b := unsafe.Slice(v.Base, v.Len)
		n, errno := rawWrite(fd, b)
		total += n
		if errno != 0 || n < len(b) {
			if total > 0 {
				return total, 0
			}
			return 0, errno
		}
	}
	return total, 0
}

// RawRead reads into b from the non-blocking socket fd.
func RawRead(fd uintptr, b []byte) (int, syscall.Errno) {
	n, err := syscall.Read(int(fd), b)
	return max(n, 0), errnoOf(err)
}

func errnoOf(err error) syscall.Errno {
	if e, ok := err.(syscall.Errno); ok {
		return e
	}
	if err != nil {
		return syscall.EIO
	}
	return 0
}
