package proxy

import (
	"fmt"
	"slices"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/pools"
)

// A Redis pool with sentinels follows Redis Sentinel through its
// failover.Follower (p.follow). Each server line's name is a Sentinel
// master name, and placement uses the names, so no key moves when a shard
// fails over: the Follower moves the pool's server for a name to the
// primary the Sentinels report (pools.Server.SetAddr), and the ring is
// never rebuilt for it. The pool asks it where a shard's primary is
// (serverOptions), which replica serves a client's reads (readServer),
// and fills in its seam, failover.Pool, with shards below.

// shards is the pool as its failover.Follower sees it.
type shards struct{ p *pool }

// Servers returns the servers of master: the pool's, and the mover's own
// connections to it; none when the pool no longer follows Sentinels.
func (sh shards) Servers(master string) []*pools.Server {
	p := sh.p
	rt := p.routing()
	if rt == nil || !rt.cfg.Sentinel.Enabled() {
		return nil
	}
	var out []*pools.Server
	for _, s := range rt.servers {
		if s.Name() == master {
			out = append(out, s)
		}
	}
	return append(out, p.mover.Servers(master)...)
}

// Options returns the options of a server of master's line dialled at
// addr, without the checks of a primary.
func (sh shards) Options(master, addr string) (pools.Options, error) {
	cfg := sh.p.routing().cfg
	i := slices.IndexFunc(cfg.Servers, func(s config.Server) bool { return s.Ident == master })
	if i < 0 {
		return pools.Options{}, fmt.Errorf("pool %q: no server named %s", cfg.Name, master)
	}
	roots, err := cfg.ServerRoots()
	if err != nil {
		return pools.Options{}, err
	}
	opt := sh.p.baseServerOptions(cfg, cfg.Servers[i], roots)
	opt.Addr = addr
	return opt, nil
}

// Retire closes a server no longer used once what it was asked is
// answered.
func (sh shards) Retire(s *pools.Server) {
	p := sh.p
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.drainServer(s)
	}()
}

// masters are the Sentinel master names of cfg's servers.
func masters(cfg *config.Pool) []string {
	var out []string
	for _, s := range cfg.Servers {
		out = append(out, s.Ident)
	}
	return out
}

// follow has the pool's Follower follow the Sentinels of its routing, or
// stop following without them.
func (p *pool) follow() {
	cfg := p.routing().cfg
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if !closed {
		p.follower.Follow(cfg.Sentinel, masters(cfg))
	}
}

// resolveServers asks the Sentinels for the primaries of a pool made but
// not started (Proxy.Start, or a pool a reload adds), and makes its
// servers anew at the addresses they report: New and Check make the
// servers at their lines' addresses and dial nothing. The servers
// replaced were never used.
func (p *pool) resolveServers() error {
	cur := p.routing()
	if !cur.cfg.Sentinel.Enabled() {
		return nil
	}
	p.follower.Resolve(cur.cfg.Sentinel, cur.cfg.Servers)
	roots, err := cur.cfg.ServerRoots()
	if err != nil {
		return err
	}
	lines := serverLines(cur.cfg)
	servers := slices.Clone(cur.servers)
	var old []*pools.Server
	for i, s := range servers {
		if s.Addr() != p.primaryAddr(cur.cfg, lines[i]) {
			old = append(old, s)
			servers[i] = p.newServer(cur.cfg, lines[i], roots)
		}
	}
	if len(old) == 0 {
		return nil
	}
	rt, err := newRouting(cur.cfg, servers)
	if err != nil {
		return err
	}
	p.ringMu.Lock()
	p.rt.Store(rt)
	p.ringMu.Unlock()
	for _, s := range old {
		s.Close()
	}
	return nil
}

// primaryAddr returns the address a server of line s is dialled at: with
// sentinels its master's primary as last reported, else the line's.
func (p *pool) primaryAddr(cfg *config.Pool, s config.Server) string {
	if !cfg.Sentinel.Enabled() {
		return s.Addr
	}
	return p.follower.PrimaryAddr(s.Ident, s.Addr)
}
