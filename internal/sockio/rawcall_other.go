//go:build !linux

package sockio

import (
	"net"
	"syscall"
)

// Off Linux every connection takes the plain path: Reader and Writer go
// through the net.Conn, so the raw calls below are never made.

func rawConn(net.Conn) syscall.RawConn { return nil }

// FD returns -1: there is no Poller on this system.
func FD(net.Conn) int { return -1 }

func rawRead(uintptr, []byte) (int, syscall.Errno)  { panic("sockio: raw read off Linux") }
func rawWrite(uintptr, []byte) (int, syscall.Errno) { panic("sockio: raw write off Linux") }

type iovecs struct{}

func (*iovecs) writev(uintptr, [][]byte) (int, syscall.Errno) { panic("sockio: raw writev off Linux") }
func (*iovecs) reset()                                        {}

// errReset is Windows' WSAECONNRESET, which syscall.ECONNRESET does not
// match there; no errno of other systems has its number.
const errReset = syscall.Errno(10054)
