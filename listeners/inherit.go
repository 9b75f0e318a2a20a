package listeners

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"

	"github.com/shardproxy/shardproxy/config"
)

// A binary upgrade (shardproxy's SIGUSR2) hands the listening sockets of
// the running process to the process of the new binary: the old process
// takes copies of them (File), the new one starts on them instead of
// binding, matching each to the listen address that takes it
// (SameAddress), and once the new one serves, the old one closes its own
// without removing the unix socket paths (KeepPath), which are the new
// process's now.

// File returns a copy of the listening socket ln (a *net.TCPListener,
// *net.UnixListener or *MovedListener), close-on-exec and, unlike the one
// net.TCPListener.File returns, left non-blocking: passing it to a child
// process does not turn ln's own socket to blocking mode, which would tie
// a thread up in accept and keep Close from returning.
func File(ln net.Listener) (*os.File, error) { return dupSocket(ln) }

// KeepPath makes closing ln leave its unix socket path in place, for the
// process that serves on the socket now. A TCP socket has no path.
func KeepPath(ln net.Listener) {
	switch s := ln.(type) {
	case *MovedListener:
		s.SetUnlinkOnClose(false)
	case *net.UnixListener:
		s.SetUnlinkOnClose(false)
	}
}

// Inherited returns ul, a unix socket inherited from another process, as
// a listener at path whose Close leaves path in place: the path is that
// process's until this one serves. SetUnlinkOnClose(true) makes it this
// process's to remove.
func Inherited(ul *net.UnixListener, path string) *MovedListener {
	ul.SetUnlinkOnClose(false)
	ml := &MovedListener{UnixListener: ul, addr: &net.UnixAddr{Name: path, Net: "unix"}}
	ml.keep.Store(true)
	return ml
}

// SameAddress says a socket listening at a listens where l says: the same
// unix path, or the same TCP port on the same address (an unspecified
// address, 0.0.0.0 or [::], being the same as another: both listen on
// every address). Port 0 asks for a new port, never an old one.
func SameAddress(a net.Addr, l config.Listen) bool {
	switch a := a.(type) {
	case *net.UnixAddr:
		return l.Network == "unix" && filepath.Clean(a.Name) == filepath.Clean(l.Addr)
	case *net.TCPAddr:
		if l.Network != "tcp" {
			return false
		}
		host, port, err := net.SplitHostPort(l.Addr)
		if err != nil || port != strconv.Itoa(a.Port) || a.Port == 0 {
			return false
		}
		if ip, err := netip.ParseAddr(host); err == nil || host == "" {
			if host == "" || ip.IsUnspecified() {
				return a.IP == nil || a.IP.IsUnspecified()
			}
			return net.IP(ip.AsSlice()).Equal(a.IP)
		}
		// A host name: the address it resolves to that a listen takes.
		ctx, cancel := context.WithTimeout(context.Background(), listenResolveTimeout)
		defer cancel()
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil || len(ips) == 0 {
			return false
		}
		first := ips[0] // a listen prefers the first IPv4 address
		for _, ip := range ips {
			if ip.Unmap().Is4() {
				first = ip
				break
			}
		}
		return net.IP(first.Unmap().AsSlice()).Equal(a.IP)
	}
	return false
}
