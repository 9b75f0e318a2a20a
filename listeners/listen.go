package listeners

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shardproxy/shardproxy/config"
)

// listenResolveTimeout bounds the lookup of a listen host name.
const listenResolveTimeout = 5 * time.Second

// probeTimeout bounds the dial that tells a live unix socket from a stale
// one.
const probeTimeout = time.Second

// Check finds, without listening or removing anything, the errors Open
// would meet on the listener cfg describes, so that shardproxy -t refuses
// what a start would refuse. It runs the checks Open runs before it
// listens (checkListen), and tries what listening would try without taking
// the port or the path: that a TCP listen host is an address of this
// machine, that a unix socket can be made in the path's directory and that
// the path is not too long for one. What it cannot see is a TCP port held
// by another process, as during a restart the running proxy holds it.
func Check(cfg *config.Pool) error {
	if _, err := checkListen(cfg); err != nil {
		return err
	}
	return probeListen(cfg)
}

// Open opens the listening socket cfg describes. A unix listen path is
// taken only when nothing is there or a stale socket is (see checkListen);
// a unix socket with permissions has them from the moment it appears at
// the path (a *MovedListener, see listenUnix).
func Open(cfg *config.Pool) (net.Listener, error) {
	l := cfg.Listen
	stale, err := checkListen(cfg)
	if err != nil {
		return nil, err
	}
	var ln net.Listener
	if l.Network == "unix" {
		ln, err = listenUnix(l.Addr, l.Perm, stale)
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), listenResolveTimeout)
		ln, err = (&net.ListenConfig{}).Listen(ctx, l.Network, l.Addr)
		cancel()
	}
	if err != nil {
		return nil, listenError(cfg, err)
	}
	return ln, nil
}

// checkListen checks what Open needs before it listens, and what Check
// checks too: that a TCP listen host resolves, and that a unix listen path
// is free to take. A path is free when nothing is there or when a socket is
// there that refuses connections: a stale socket, left by a process that
// ended without removing it, which Open then removes (stale is true). A
// socket that accepts belongs to a live process, and any file that is not
// a socket is not ours to delete: both are errors.
func checkListen(cfg *config.Pool) (stale bool, err error) {
	if cfg.Listen.Network == "unix" {
		return checkUnixPath(cfg)
	}
	return false, resolveListenHost(cfg)
}

// resolveListenHost looks the listen host name up, as a listen would; an
// IP address needs no lookup.
func resolveListenHost(cfg *config.Pool) error {
	host, _, err := net.SplitHostPort(cfg.Listen.Addr)
	if err != nil {
		return listenError(cfg, err)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), listenResolveTimeout)
	defer cancel()
	if _, err := net.DefaultResolver.LookupHost(ctx, host); err != nil {
		return listenError(cfg, fmt.Errorf("host %q of %s does not resolve: %w", host, cfg.Listen.Addr, err))
	}
	return nil
}

// checkUnixPath applies the unix listen path rule of checkListen.
func checkUnixPath(cfg *config.Pool) (stale bool, err error) {
	path := cfg.Listen.Addr
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, listenError(cfg, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return false, listenError(cfg, fmt.Errorf("%s is not a socket but %s: remove it or choose another path",
			path, fileKind(fi.Mode())))
	}
	nc, err := net.DialTimeout("unix", path, probeTimeout)
	switch {
	case err == nil:
		nc.Close()
		return false, listenError(cfg, fmt.Errorf("%s: another process is listening on it", path))
	case errors.Is(err, syscall.ECONNREFUSED):
		return true, nil
	case errors.Is(err, syscall.EAGAIN) || errors.Is(err, os.ErrDeadlineExceeded):
		return false, listenError(cfg, fmt.Errorf("%s: another process is listening on it (it accepts no more connections now)", path))
	}
	return false, listenError(cfg, fmt.Errorf("%s: cannot tell whether another process is listening on it: %w", path, err))
}

// fileKind names the type of a file that is not a socket.
func fileKind(m fs.FileMode) string {
	switch m.Type() {
	case 0:
		return "a regular file"
	case fs.ModeDir:
		return "a directory"
	case fs.ModeSymlink:
		return "a symbolic link"
	case fs.ModeNamedPipe:
		return "a named pipe"
	case fs.ModeDevice, fs.ModeDevice | fs.ModeCharDevice:
		return "a device"
	}
	return "a file of type " + m.Type().String()
}

// probeListen tries, for Check, what listening would: a TCP listen host
// must be an address of this machine (bound here on a port the system
// picks, not the pool's), and a unix socket must fit in a socket address
// and be creatable in the path's directory (made there under another
// name, then removed).
func probeListen(cfg *config.Pool) error {
	l := cfg.Listen
	if l.Network != "unix" {
		host, _, _ := net.SplitHostPort(l.Addr)
		ctx, cancel := context.WithTimeout(context.Background(), listenResolveTimeout)
		defer cancel()
		ln, err := (&net.ListenConfig{}).Listen(ctx, l.Network, net.JoinHostPort(host, "0"))
		if err != nil {
			return listenError(cfg, fmt.Errorf("cannot listen on host %q: %w", host, err))
		}
		return ln.Close()
	}
	if limit := len(syscall.RawSockaddrUnix{}.Path); len(l.Addr) >= limit {
		return listenError(cfg, fmt.Errorf("%s: a socket path must be shorter than %d bytes", l.Addr, limit))
	}
	dir, err := os.MkdirTemp(filepath.Dir(l.Addr), ".shardproxy-")
	if err != nil {
		return listenError(cfg, fmt.Errorf("cannot make a socket next to %s: %w", l.Addr, err))
	}
	defer os.RemoveAll(dir)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "s"), Net: "unix"})
	if err != nil {
		return listenError(cfg, fmt.Errorf("cannot make a socket next to %s: %w", l.Addr, err))
	}
	return ln.Close()
}

// listenError is an error of the pool's listen key.
func listenError(cfg *config.Pool, err error) error {
	return &config.Error{Pool: cfg.Name, Key: "listen", Value: cfg.Listen.Addr, Line: cfg.Line("listen"), Err: err}
}

// listenUnix listens on the unix socket path with permissions perm (0
// keeps the umask's), first removing the stale socket there when stale.
// With perm the socket is made in a private directory next to path, given
// its permissions there, and linked into place: no client can connect
// while it still has the default permissions, and, like the bind without
// perm, the link fails rather than replace a file that appeared at path
// since checkListen looked.
func listenUnix(path string, perm os.FileMode, stale bool) (net.Listener, error) {
	if stale {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	if perm == 0 {
		return net.Listen("unix", path)
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), ".shardproxy-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(false) // tmp is gone; MovedListener.Close removes path
	if err := os.Chmod(tmp, perm); err != nil {
		ln.Close()
		return nil, err
	}
	if err := os.Link(tmp, path); err != nil {
		ln.Close()
		return nil, err
	}
	return &MovedListener{UnixListener: ln, addr: &net.UnixAddr{Name: path, Net: "unix"}}, nil
}

// MovedListener is a listener whose socket was moved: Addr reports where
// it is now, and Close removes it there unless told not to
// (SetUnlinkOnClose, KeepPath).
type MovedListener struct {
	*net.UnixListener
	addr   *net.UnixAddr
	remove sync.Once
	keep   atomic.Bool
}

// Addr returns the socket's current path.
func (l *MovedListener) Addr() net.Addr { return l.addr }

// Close removes the socket's path, then closes the socket, as a
// net.UnixListener does: the path never names a stale socket that another
// process could take and this one then remove.
func (l *MovedListener) Close() error {
	l.remove.Do(func() {
		if !l.keep.Load() {
			os.Remove(l.addr.Name)
		}
	})
	return l.UnixListener.Close()
}

// SetUnlinkOnClose sets whether Close removes the socket's path, as
// net.UnixListener's does: not once another process serves on it.
func (l *MovedListener) SetUnlinkOnClose(unlink bool) { l.keep.Store(!unlink) }
