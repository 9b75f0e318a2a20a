package proxy

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/listeners"
)

// A binary upgrade (shardproxy's SIGUSR2) hands the listening sockets of
// the running process to the process of the new binary, so that no connect
// is refused between the old process's last accept and the new one's
// first. The old process takes copies of its sockets (ListenerFiles), the
// new one starts on them (Options.Listeners) instead of binding, and once
// the new one serves, the old one lets go of its own (HandOver, then
// Shutdown): the sockets stay open, in the new process. (A reload hands a
// socket from one pool to another within a process: handover.go.)

// ListenerFiles returns a copy of each listening socket the proxy holds,
// its pools' and the stats listener's, keyed by the address it listens on
// as the configuration writes it (a pool's listen value, Options.StatsAddr).
// The copies are close-on-exec (os/exec's ExtraFiles still passes them)
// and the caller closes them.
func (px *Proxy) ListenerFiles() (map[string]*os.File, error) {
	socks := map[string]net.Listener{}
	for _, p := range px.poolList() {
		p.mu.Lock()
		if p.ln != nil {
			socks[p.cfg.Listen.Addr] = p.ln.sock
		}
		p.mu.Unlock()
	}
	if px.stats != nil {
		socks[px.opt.StatsAddr] = px.stats
	}
	files := make(map[string]*os.File, len(socks))
	for addr, sock := range socks {
		f, err := listeners.File(sock)
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, fmt.Errorf("listener %s: %w", addr, err)
		}
		files[addr] = f
	}
	return files, nil
}

// HandOver tells the proxy that another process now serves on its
// listening sockets: closing them (Shutdown, Close) leaves the unix socket
// paths in place, for that process, instead of removing them.
func (px *Proxy) HandOver() {
	for _, p := range px.poolList() {
		p.mu.Lock()
		if p.ln != nil {
			listeners.KeepPath(p.ln.sock)
		}
		p.mu.Unlock()
	}
}

// takeListener returns, and forgets, the socket of Options.Listeners that
// listens where cfg does, as a listener for the pool (TLS with tc; a unix
// socket removed from its path when closed, once Start has succeeded); nil
// when there is none.
func (px *Proxy) takeListener(cfg *config.Pool, tc *tls.Config) *listener {
	sock := px.take(func(key string, ln net.Listener) bool {
		return key == cfg.Listen.Addr || listeners.SameAddress(ln.Addr(), cfg.Listen)
	})
	if sock == nil {
		return nil
	}
	if ul, ok := sock.(*net.UnixListener); ok {
		// The path stays while Start may still fail: it is the process
		// that handed the socket over's until this one serves.
		ml := listeners.Inherited(ul, cfg.Listen.Addr)
		px.adopted = append(px.adopted, ml)
		sock = ml
	}
	return newListener(sock, tc)
}

// takeAddr returns, and forgets, the socket of Options.Listeners whose key
// is addr or which listens at addr, or nil.
func (px *Proxy) takeAddr(addr string) net.Listener {
	return px.take(func(key string, ln net.Listener) bool { return key == addr || ln.Addr().String() == addr })
}

// take returns, and forgets, the socket of Options.Listeners that match
// accepts, or nil.
func (px *Proxy) take(match func(key string, ln net.Listener) bool) net.Listener {
	px.mu.Lock()
	defer px.mu.Unlock()
	for key, ln := range px.inherited {
		if match(key, ln) {
			delete(px.inherited, key)
			return ln
		}
	}
	return nil
}

// adopt makes the unix sockets taken from Options.Listeners this
// process's own, once Start has succeeded: closing them removes their
// paths, as for those Start binds.
func (px *Proxy) adopt() {
	for _, ml := range px.adopted {
		ml.SetUnlinkOnClose(true)
	}
	px.adopted = nil
}

// closeInherited closes the sockets of Options.Listeners that no listener
// of the configuration took.
func (px *Proxy) closeInherited() {
	px.mu.Lock()
	left := px.inherited
	px.inherited = nil
	px.mu.Unlock()
	for addr, ln := range left {
		px.log.Info("inherited listener not in the configuration: closed", "listen", addr)
		ln.Close()
	}
}
