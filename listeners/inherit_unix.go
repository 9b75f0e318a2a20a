//go:build !windows

package listeners

import (
	"errors"
	"net"
	"os"
	"syscall"
)

// dupSocket duplicates ln's socket, close-on-exec, through its raw
// descriptor: os.NewFile keeps a non-blocking descriptor non-blocking when
// handed to a child (net's File would make it blocking).
func dupSocket(ln net.Listener) (*os.File, error) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return nil, errors.New("not a socket listener")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nfd int
	var dupErr error
	err = rc.Control(func(fd uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0)
		if e != 0 {
			dupErr = os.NewSyscallError("fcntl", e)
			return
		}
		nfd = int(r)
	})
	if err == nil {
		err = dupErr
	}
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(nfd), ln.Addr().String()), nil
}
