package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/pools"
)

// drainTimeout bounds how long a reload waits for a leaving pool's clients
// and a leaving server's requests to be answered before it closes them.
const drainTimeout = 10 * time.Second

// reloadStats are the proxy's reload counters, served with the stats.
type reloadStats struct {
	mu       sync.Mutex
	digest   string // the running configuration's digest
	reloads  int64  // reloads applied
	failures int64  // reloads refused (a bad file changes nothing)
	lastErr  string // why the last refused reload was refused
	lastAt   time.Time
	// lastFailed says the last reload tried (at lastAt) was refused.
	lastFailed bool
}

// Reload reads the configuration file again (Options.ConfigPath), once,
// and applies what changed while serving; see ReloadBytes.
func (px *Proxy) Reload() error {
	if px.opt.ConfigPath == "" {
		return px.reloadFailed(errors.New("no configuration file to reload"))
	}
	data, err := os.ReadFile(px.opt.ConfigPath)
	if err != nil {
		return px.reloadFailed(fmt.Errorf("config: %w", err))
	}
	return px.ReloadBytes(data)
}

// ReloadBytes applies data as the configuration file's content, exactly
// these bytes: a caller that checked what it read (a watcher waiting for
// the file to settle) applies what it checked, not a later read. It is
// counted and logged as Reload is, and the running digest becomes data's.
func (px *Proxy) ReloadBytes(data []byte) error {
	cfg, err := config.Parse(data)
	if err != nil {
		return px.reloadFailed(fmt.Errorf("config %s: %w", px.opt.ConfigPath, err))
	}
	return px.Apply(cfg)
}

// ConfigDigest is the running configuration's digest (config.Digest of the
// bytes applied last), as the stats' config_digest.
func (px *Proxy) ConfigDigest() string {
	px.reload.mu.Lock()
	defer px.reload.mu.Unlock()
	return px.reload.digest
}

// Apply makes cfg the running configuration without dropping a client of a
// pool that stays. Pools are matched by name:
//   - a pool whose settings are the same is not touched;
//   - an added pool starts listening;
//   - a removed pool stops listening and closes each client once its
//     requests in flight are answered;
//   - a changed pool keeps its clients and takes a new routing value:
//     requests already queued complete on their connections, new ones use
//     the new ring; servers whose line and connection settings did not
//     change keep their connections, and the others' connections close
//     once drained; a new listen address is bound before the old one
//     closes; limits and timeouts apply to the next batch of each client.
//
// A listen address that one pool leaves (removed, or moved elsewhere) and
// another takes passes with its socket, never closed and bound again
// (handover.go); so does a pool's own socket when its client TLS changes.
//
// Everything that can fail (listen addresses, certificate files, rings) is
// prepared first: when any of it fails, nothing changes and the error is
// returned and counted.
func (px *Proxy) Apply(cfg *config.Config) error {
	px.reloadMu.Lock()
	defer px.reloadMu.Unlock()
	px.mu.Lock()
	closed, old := px.done, px.pools
	px.mu.Unlock()
	if closed {
		return errors.New("proxy closed")
	}
	plan, err := px.prepare(old, cfg)
	if err != nil {
		plan.abort()
		return px.reloadFailed(err)
	}
	px.commit(plan)
	px.reload.mu.Lock()
	px.reload.digest = cfg.Digest
	px.reload.reloads++
	px.reload.lastAt = time.Now()
	px.reload.lastFailed = false
	px.reload.mu.Unlock()
	px.log.Info("configuration reloaded", "digest", cfg.Digest, "pools", len(plan.pools),
		"added", len(plan.added), "changed", len(plan.changed), "removed", len(plan.removed))
	return nil
}

// reloadFailed counts and logs a refused reload and returns err.
func (px *Proxy) reloadFailed(err error) error {
	px.reload.mu.Lock()
	px.reload.failures++
	px.reload.lastErr = err.Error()
	px.reload.lastAt = time.Now()
	px.reload.lastFailed = true
	px.reload.mu.Unlock()
	px.log.Error("reload refused; the running configuration is unchanged", "err", err)
	return err
}

// reloadPlan is what a reload does, prepared so that committing it cannot
// fail.
type reloadPlan struct {
	pools   []*pool // the pools after the reload, in file order
	added   []*pool // new pools, listening or given a handover, not yet serving
	removed []*pool // pools that leave
	changed []*poolChange
	// takes is the handover of each added pool that takes a leaving
	// pool's socket; handed the listeners whose sockets pass.
	takes  map[*pool]*handover
	handed map[*listener]bool
}

// poolChange is the new state of a pool that stays with other settings.
type poolChange struct {
	p     *pool
	cfg   *config.Pool
	rt    *routing
	fresh []*pools.Server // servers made for the new routing
	gone  []*pools.Server // servers that leave
	// ln is the new listener when the listen address changed to one no
	// leaving pool listens on; h is the handover when one does (the pool
	// itself when only its client TLS or socket permissions changed).
	ln *listener
	h  *handover
	// listener says the listen address or the client TLS changed; tls is
	// then the new client TLS (nil: plain).
	listener bool
	tls      *tls.Config
}

// prepare builds everything the reload needs without touching the running
// pools.
func (px *Proxy) prepare(old []*pool, cfg *config.Config) (*reloadPlan, error) {
	plan := &reloadPlan{takes: map[*pool]*handover{}, handed: map[*listener]bool{}}
	byName := map[string]*pool{}
	for _, p := range old {
		byName[p.cfg.Name] = p
	}
	seen := map[string]bool{}
	for _, pc := range cfg.Pools {
		seen[pc.Name] = true
		p, ok := byName[pc.Name]
		switch {
		case ok && p.cfg.Same(pc) && p.routing().cfg.Same(pc):
			plan.pools = append(plan.pools, p)
		case ok && p.cfg.Redis == pc.Redis && p.cfg.RedisCluster == pc.RedisCluster &&
			(!pc.RedisCluster || p.routing().cfg.SameServerSettings(pc)):
			// A cluster pool keeps its nodes when their settings stay;
			// else it is a new pool.
			ch, err := px.prepareChange(p, pc)
			if ch != nil {
				plan.changed = append(plan.changed, ch)
			}
			if err != nil {
				return plan, err
			}
			plan.pools = append(plan.pools, p)
		default:
			// New, or a pool that changed protocol: a new pool.
			np, err := newPool(pc, px.log)
			if err != nil {
				return plan, err
			}
			plan.added = append(plan.added, np)
			if err := np.resolveServers(); err != nil {
				return plan, err
			}
			plan.pools = append(plan.pools, np)
			if ok {
				plan.removed = append(plan.removed, p)
			}
		}
	}
	for _, p := range old {
		if !seen[p.cfg.Name] {
			plan.removed = append(plan.removed, p)
		}
	}
	return plan, plan.prepareListeners()
}

// prepareListeners gives each added pool, and each changed pool whose
// listener changes, its listener: the socket of a pool that lets go of the
// same address, handed over at commit, else a socket bound now.
func (plan *reloadPlan) prepareListeners() error {
	var rel []releasing
	for _, p := range plan.removed {
		if l := p.listener(); l != nil && l.handable() {
			rel = append(rel, releasing{p, l})
		}
	}
	for _, ch := range plan.changed {
		if l := ch.p.listener(); ch.listener && l != nil && l.handable() {
			rel = append(rel, releasing{ch.p, l})
		}
	}
	for _, np := range plan.added {
		var h *handover
		if rel, h = claim(rel, np.cfg); h != nil {
			plan.takes[np], plan.handed[h.l] = h, true
			continue
		}
		if err := np.listen(); err != nil {
			return err
		}
	}
	for _, ch := range plan.changed {
		if !ch.listener {
			continue
		}
		if rel, ch.h = claim(rel, ch.cfg); ch.h != nil {
			plan.handed[ch.h.l] = true
			continue
		}
		var err error
		if ch.ln, err = openListener(ch.cfg, ch.tls); err != nil {
			return err
		}
	}
	return nil
}

// prepareChange builds the new routing of a pool that stays with other
// settings, and its new listener when its listen address changed.
func (px *Proxy) prepareChange(p *pool, pc *config.Pool) (*poolChange, error) {
	ch := &poolChange{p: p, cfg: pc}
	cur := p.routing()
	if p.cluster != nil {
		// Its nodes stay; commitChange takes the map current then.
		mig, err := p.reloadClusterMigration(ch, cur, pc)
		if err != nil {
			return ch, err
		}
		ch.rt = newClusterRouting(pc, cur.clusterMap, cur.ring, cur.clusterReplicas).migrating(mig)
		return ch, p.prepareListener(ch, pc)
	}
	p.follower.Resolve(pc.Sentinel, pc.Servers)
	var roots *x509.CertPool
	if pc.ServerTLS.Enabled {
		var err error
		if roots, err = pc.ServerRoots(); err != nil {
			return ch, err
		}
	}
	reuse := map[string]*pools.Server{}
	if cur.cfg.SameServerSettings(pc) {
		curLines := serverLines(cur.cfg)
		for i, s := range cur.servers {
			reuse[serverKey(curLines[i])] = s
		}
	}
	lines := serverLines(pc) // with the old owners of a migration
	servers := make([]*pools.Server, len(lines))
	kept := map[*pools.Server]bool{}
	for i, line := range lines {
		if s, ok := reuse[serverKey(line)]; ok && !kept[s] {
			servers[i] = s
			kept[s] = true
			continue
		}
		servers[i] = p.newServer(pc, line, roots)
		ch.fresh = append(ch.fresh, servers[i])
	}
	for _, s := range cur.servers {
		if !kept[s] {
			ch.gone = append(ch.gone, s)
		}
	}
	rt, err := newRouting(pc, servers)
	if err != nil {
		return ch, err
	}
	ch.rt = rt
	return ch, p.prepareListener(ch, pc)
}

// prepareListener reads the new client TLS of a pool whose listen address,
// socket permissions or client TLS changed; prepareListeners then finds
// its socket.
func (p *pool) prepareListener(ch *poolChange, pc *config.Pool) error {
	if !p.cfg.SameListener(pc) {
		tc, err := pc.ClientTLSConfig()
		if err != nil {
			return err
		}
		ch.listener, ch.tls = true, tc
	}
	return nil
}

// listener returns the pool's listener, nil when it has none.
func (p *pool) listener() *listener {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ln
}

// serverKey identifies a server line for reuse across a reload: its
// identity and where it is.
func serverKey(s config.Server) string { return s.Ident + "\x00" + s.Network + "\x00" + s.Addr }
