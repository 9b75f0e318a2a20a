//go:build !linux

package sockio

import (
	"errors"
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

// Accept returns errors.ErrUnsupported: connections are accepted as
// net.Conns here.
func Accept(syscall.RawConn) (int, error) { return -1, errors.ErrUnsupported }

// SetTCPOptions does nothing: there are no bare descriptors here.
func SetTCPOptions(int, bool) {}

// Shutdown does nothing: there are no bare descriptors here.
func Shutdown(int) {}

// CloseFD returns errors.ErrUnsupported.
func CloseFD(int) error { return errors.ErrUnsupported }

// Peer returns nil addresses: there are no bare descriptors here.
func Peer(int) (remote, local net.Addr) { return nil, nil }

// Iovecs is TryWritevFD's scratch space; there is none here.
type Iovecs struct{}

// TryWriteFD returns errors.ErrUnsupported.
func TryWriteFD(int, []byte) (int, error) { return 0, errors.ErrUnsupported }

// TryWritevFD returns errors.ErrUnsupported.
func TryWritevFD(int, [][]byte, *Iovecs) error { return errors.ErrUnsupported }
