package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/internal/memtrim"
	"github.com/shardproxy/shardproxy/listeners"
)

// Options are the proxy's settings that do not come from the pool file.
type Options struct {
	// StatsAddr is where the stats JSON is served (nutcracker's -a:-s,
	// default 0.0.0.0:22222); empty serves no stats.
	StatsAddr string
	Logger    *slog.Logger
	// ConfigPath is the configuration file Reload reads again.
	ConfigPath string
	// Listeners are listening sockets to serve on instead of binding, as
	// a binary upgrade hands them over (inherit.go), keyed by address: a
	// pool whose listen value is a key, or whose key's socket listens at
	// that address, takes its listener, and so does the stats listener
	// at StatsAddr (TLS and a unix socket's removal on close are added as
	// for a listener Start opens). The proxy owns them from New on: Start
	// closes those no listener took, and Close any it did not reach.
	Listeners map[string]net.Listener
}

// Proxy owns every pool's listener, servers and clients, and the stats
// listener. Close stops all of them.
//
// Lock order: reloadMu before mu, and mu before a pool's mu (Addr).
type Proxy struct {
	opt   Options
	log   *slog.Logger
	pools []*pool // the running pools, in file order; replaced whole under mu
	// leaving are pools a reload removed that are still draining.
	leaving map[*pool]bool
	stats   net.Listener
	wg      sync.WaitGroup
	mu      sync.Mutex
	done    bool
	// reloadMu makes reloads, and Close, one at a time.
	reloadMu sync.Mutex
	reload   reloadStats
	// trimHeld: Start took hold of memtrim.Process, and Close lets go of it, so
	// that no trim its parked clients scheduled runs after it.
	trimHeld bool
	// inherited are the Options.Listeners not yet taken; under mu.
	inherited map[string]net.Listener
	// adopted are the unix sockets Start took from Options.Listeners; their
	// paths become this proxy's to remove once Start succeeds.
	adopted []*listeners.MovedListener
}

// New builds a proxy from a validated configuration; it listens on nothing
// until Start.
func New(cfg *config.Config, opt Options) (*Proxy, error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	px := &Proxy{opt: opt, log: opt.Logger, leaving: map[*pool]bool{}}
	px.inherited = make(map[string]net.Listener, len(opt.Listeners))
	for addr, ln := range opt.Listeners {
		px.inherited[addr] = ln
	}
	px.reload.digest = cfg.Digest
	for _, pc := range cfg.Pools {
		p, err := newPool(pc, px.log)
		if err != nil {
			px.closePools()
			px.closeInherited()
			return nil, err
		}
		px.pools = append(px.pools, p)
	}
	return px, nil
}

// Start opens every listener and starts serving. On error nothing is left
// listening.
func (px *Proxy) Start() error {
	memtrim.Process.Hold()
	px.trimHeld = true
	// Stats listen first: once a pool's port accepts, so does the stats
	// port, for a health check or a script that reads stats as soon as
	// the proxy answers. The kernel queues them until served below.
	if px.opt.StatsAddr != "" {
		ln := px.takeAddr(px.opt.StatsAddr)
		if ln == nil {
			var err error
			if ln, err = net.Listen("tcp", px.opt.StatsAddr); err != nil {
				px.Close()
				return fmt.Errorf("stats: %w", err)
			}
		}
		px.stats = ln
	}
	for _, p := range px.pools {
		if err := p.resolveServers(); err != nil {
			px.Close()
			return err
		}
		if p.ln = px.takeListener(p.cfg, p.tls); p.ln != nil {
			continue
		}
		if err := p.listen(); err != nil {
			px.Close()
			return err
		}
	}
	if px.stats != nil {
		px.wg.Add(1)
		go px.serveStats(px.stats)
	}
	px.closeInherited()
	var checks []<-chan struct{}
	for _, p := range px.pools {
		checks = append(checks, px.startPool(p, nil)...)
	}
	// Readiness counts a server only once checked (probe.go): loopback
	// and LAN checks end in milliseconds.
	awaitProbes(checks, startProbeWait)
	px.adopt()
	return nil
}

// Shutdown stops accepting on every pool, lets each client's requests in
// flight be answered (idle clients go at once), waiting at most d, then
// closes everything as Close does.
func (px *Proxy) Shutdown(d time.Duration) error {
	var wg sync.WaitGroup
	for _, p := range px.poolList() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.quiesce(d)
		}()
	}
	wg.Wait()
	return px.Close()
}

// poolList returns the running pools, in file order.
func (px *Proxy) poolList() []*pool {
	px.mu.Lock()
	defer px.mu.Unlock()
	return px.pools
}

// startPool starts serving a pool whose listener is open, or which takes
// its socket by the handover h; it returns the ends of the first checks of
// its servers (probe.go).
func (px *Proxy) startPool(p *pool, h *handover) []<-chan struct{} {
	if p.cfg.Preconnect {
		p.preconnect()
	}
	p.ensureParker()
	p.setMover()
	p.follow()
	checks := p.startProber()
	if p.cluster != nil {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.cluster.topo.Run(p.done)
		}()
	}
	if h != nil {
		// The socket of the pool that left its address, taken now that
		// this pool is ready to accept.
		p.ln = h.take(p.tls)
	}
	p.mu.Lock()
	p.startServing(p.ln)
	p.mu.Unlock()
	px.log.Info("pool listening", "pool", p.cfg.Name, "listen", p.ln.Addr().String(), "servers", len(p.routing().servers))
	return checks
}

// Addr returns the address pool i (in file order) listens on, after Start;
// nil while a reload moves its listener.
func (px *Proxy) Addr(i int) net.Addr {
	px.mu.Lock()
	p := px.pools[i]
	px.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return nil
	}
	return p.ln.Addr()
}

// StatsAddr returns the stats listener's address, or nil.
func (px *Proxy) StatsAddr() net.Addr {
	if px.stats == nil {
		return nil
	}
	return px.stats.Addr()
}

// Close stops accepting, closes every client and server connection, and
// returns once every goroutine the proxy started has ended.
func (px *Proxy) Close() error {
	px.reloadMu.Lock()
	defer px.reloadMu.Unlock()
	px.mu.Lock()
	if px.done {
		px.mu.Unlock()
		return nil
	}
	px.done = true
	px.mu.Unlock()
	var err error
	if px.stats != nil {
		if e := px.stats.Close(); e != nil && !errors.Is(e, net.ErrClosed) {
			err = e
		}
	}
	px.closePools()
	px.closeInherited()
	px.wg.Wait()
	if px.trimHeld {
		memtrim.Process.Release()
	}
	return err
}

func (px *Proxy) closePools() {
	px.mu.Lock()
	all := append([]*pool(nil), px.pools...)
	for p := range px.leaving {
		all = append(all, p)
	}
	px.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.close()
		}()
	}
	wg.Wait()
}
