package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/pools"
	"github.com/shardproxy/shardproxy/sentinel"
)

// A Redis pool with sentinels: follows Redis Sentinel. Each server line's
// name is a Sentinel master name, and placement uses the names, so no key
// moves when a shard fails over: the pool's server for a name is moved to
// the primary the Sentinels report (pools.Server.SetAddr), and the ring is
// never rebuilt for it.
//
//   - At Start (and for a server a reload makes), the Sentinels are asked
//     for each master (resolvePrimaries, resolveServers); the line's
//     host:port is used only when none answers. New and Check ask nothing.
//   - A watcher subscribes to +switch-master and +promoted-slave on every
//     Sentinel, asks again whenever a subscription (re)connects, and
//     reports each new address: primaryMoved moves the server. On
//     +selected-slave the pool probes the replica being promoted and moves
//     as soon as ROLE says master (promoting), before the failover ends.
//   - A connection is used only once ROLE says master (verifyPrimary); a
//     failed connection or a -READONLY reply asks the Sentinels at once
//     (requery), in case a switch was missed.

// resolveTimeout bounds the questions to the Sentinels at start (or for a
// reload), for all masters together: Sentinels that do not answer must
// not hold a start or a reload for long.
const resolveTimeout = 2 * time.Second

// watcherOptions are the options of the Sentinel watcher of cfg.
func (p *pool) watcherOptions(cfg *config.Pool) sentinel.Options {
	var masters []string
	for _, s := range cfg.Servers {
		masters = append(masters, s.Ident)
	}
	return sentinel.Options{
		Addrs:       cfg.Sentinel.Addrs,
		Username:    cfg.Sentinel.Username,
		Password:    cfg.Sentinel.Password,
		Masters:     masters,
		OnSwitch:    p.primaryReported,
		OnPromoting: p.promoting,
		OnAborted:   p.failoverAborted,
		CheckPrimary: func(_ context.Context, master, addr string) error {
			return p.probePrimary(cfg, master, addr)
		},
		Logger: p.log,
	}
}

// resolvePrimaries asks the Sentinels of cfg for the primary of each of
// its masters not known yet, and keeps the answers for the servers to be
// made (serverOptions). A master no Sentinel answers for keeps its line's
// address, with a warning.
func (p *pool) resolvePrimaries(cfg *config.Pool) {
	if !cfg.Sentinel.Enabled() {
		return
	}
	w := sentinel.New(p.watcherOptions(cfg))
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	for _, s := range cfg.Servers {
		p.haMu.Lock()
		_, known := p.primaries[s.Ident]
		p.haMu.Unlock()
		if known {
			continue
		}
		addr, err := w.Resolve(ctx, s.Ident)
		if err != nil {
			p.log.Warn("sentinel: no primary reported: using the server line's address until one is",
				"master", s.Ident, "addr", s.Addr, "err", err)
			continue
		}
		p.haMu.Lock()
		p.primaries[s.Ident] = addr
		p.haMu.Unlock()
		if addr != s.Addr {
			p.log.Info("sentinel: primary", "master", s.Ident, "addr", addr, "line", s.Addr)
		}
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
	p.resolvePrimaries(cur.cfg)
	roots, err := serverRoots(cur.cfg)
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

// primaryAddr returns the address a server of line s is dialled at: its
// master's primary as last reported, else the line's.
func (p *pool) primaryAddr(cfg *config.Pool, s config.Server) string {
	if !cfg.Sentinel.Enabled() {
		return s.Addr
	}
	p.haMu.Lock()
	defer p.haMu.Unlock()
	if addr, ok := p.primaries[s.Ident]; ok {
		return addr
	}
	return s.Addr
}

// primaryReported is the watcher's OnSwitch: the Sentinels report addr as
// master's primary. It ends a hold of master (promoting).
func (p *pool) primaryReported(master, addr string) {
	p.primaryMoved(master, addr)
	p.failoverOutcome(master)
}

// failoverAborted is the watcher's OnAborted: the failover of master was
// given up, its primary stays where the Sentinels reported it. It ends a
// hold of master (promoting).
func (p *pool) failoverAborted(master string) {
	p.failoverOutcome(master)
}

// failoverOutcome wakes the hold of master, if one waits.
func (p *pool) failoverOutcome(master string) {
	p.haMu.Lock()
	if ch := p.outcome[master]; ch != nil {
		close(ch)
		delete(p.outcome, master)
	}
	p.haMu.Unlock()
}

// shardServers returns the servers of master: the pool's, and the
// mover's own connections to it.
func (p *pool) shardServers(master string) []*pools.Server {
	var out []*pools.Server
	if rt := p.routing(); rt != nil {
		for _, s := range rt.servers {
			if s.Name() == master {
				out = append(out, s)
			}
		}
	}
	p.moverMu.Lock()
	if mv := p.mover; mv != nil {
		for _, s := range mv.own {
			if s.Name() == master {
				out = append(out, s)
			}
		}
	}
	p.moverMu.Unlock()
	return out
}

// primaryMoved moves the servers of master to addr, its primary now.
func (p *pool) primaryMoved(master, addr string) {
	p.haMu.Lock()
	p.primaries[master] = addr
	p.haMu.Unlock()
	rt := p.routing()
	if rt == nil || !rt.cfg.Sentinel.Enabled() {
		return
	}
	moved := false
	for _, s := range p.shardServers(master) {
		from := s.Addr()
		if s.SetAddr(addr) {
			moved = true
			p.log.Warn("failover: the shard's primary moved", "server", master, "from", from, "to", addr,
				"failovers", s.Stats.Failovers.Load())
		}
	}
	if !moved {
		return
	}
	p.haMu.Lock()
	if p.keeper != nil {
		p.keeper.refreshSoon()
	}
	p.haMu.Unlock()
}

// promoteWait bounds the wait for a replica selected for promotion to
// answer as a primary; holdWait the hold of the shard once it does, for
// the failover's end or abort.
const (
	promoteWait         = 10 * time.Second
	holdWait            = 2 * time.Second
	promotePoll         = 5 * time.Millisecond
	promoteProbeTimeout = 500 * time.Millisecond
)

// promoting is the watcher's OnPromoting: the Sentinel leading a failover
// of master will promote the replica at addr. The pool dials addr until
// ROLE says master, and then holds the shard's requests (pools.Server.Hold)
// until the failover's outcome is known, without sending them to either
// server: the old primary's writes from the promotion on are lost if the
// failover goes on (it becomes a replica of addr), and the replica's if it
// is aborted (the Sentinels turn it back into a replica). The outcome is
// the Sentinels' report of the new primary (+promoted-slave, which comes
// once the leader sees the replica's new role, or +switch-master), an
// abort message, or, after holdWait, every Sentinel's answer; the shard
// then goes where the Sentinels say, and its requests follow.
func (p *pool) promoting(master, addr string) {
	p.haMu.Lock()
	if p.probing[master] {
		p.haMu.Unlock()
		return
	}
	p.probing[master] = true
	p.haMu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer func() {
			p.haMu.Lock()
			delete(p.probing, master)
			p.haMu.Unlock()
		}()
		if p.awaitPromotion(master, addr) {
			p.holdShard(master, addr)
		}
	}()
}

// holdShard holds the servers of master until the outcome of the failover
// to addr is known (see promoting).
func (p *pool) holdShard(master, addr string) {
	servers := p.shardServers(master)
	if len(servers) == 0 || servers[0].Addr() == addr {
		return // moved already
	}
	ch := make(chan struct{})
	p.haMu.Lock()
	p.outcome[master] = ch
	w := p.watcher
	p.haMu.Unlock()
	start := time.Now()
	for _, s := range servers {
		s.Hold()
	}
	defer func() {
		for _, s := range servers {
			s.Release()
		}
		p.log.Info("failover: the shard's requests go on", "server", master, "primary", servers[0].Addr(),
			"held", time.Since(start).Round(time.Millisecond))
	}()
	p.log.Info("failover: the replica being promoted answers as primary: holding the shard's requests until the "+
		"failover ends or is aborted", "server", master, "promoting", addr, "primary", servers[0].Addr())
	t := time.NewTimer(holdWait)
	defer t.Stop()
	select {
	case <-ch:
		return
	case <-p.done:
		return
	case <-t.C:
	}
	p.haMu.Lock()
	delete(p.outcome, master)
	p.haMu.Unlock()
	if w == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	reported, err := w.Settle(ctx, master)
	p.log.Warn("failover: no outcome announced: following every Sentinel's answer", "server", master,
		"promoting", addr, "reported", reported, "err", err)
}

// awaitPromotion dials addr with the options of master's line until ROLE
// says master, for promoteWait at most; it reports whether it did.
func (p *pool) awaitPromotion(master, addr string) bool {
	cfg := p.routing().cfg
	deadline := time.Now().Add(promoteWait)
	for time.Now().Before(deadline) {
		if p.probePrimary(cfg, master, addr) == nil {
			return true
		}
		select {
		case <-p.done:
			return false
		case <-time.After(promotePoll):
		}
	}
	return false
}

// probePrimary dials addr once with the options of master's line in cfg
// and checks that ROLE says master.
func (p *pool) probePrimary(cfg *config.Pool, master, addr string) error {
	i := slices.IndexFunc(cfg.Servers, func(s config.Server) bool { return s.Ident == master })
	if i < 0 {
		return fmt.Errorf("no server named %s", master)
	}
	roots, err := serverRoots(cfg)
	if err != nil {
		return err
	}
	// The line's options, with the ROLE check of a primary but no
	// questions to the Sentinels, one connection and a short timeout.
	opt := p.baseServerOptions(cfg, cfg.Servers[i], roots)
	opt.Handshake, opt.Verify = withRole(opt.Handshake), verifyPrimary
	opt.Addr, opt.Timeout, opt.AutoEject, opt.Connections, opt.Logger = addr, promoteProbeTimeout, false, 1, nil
	s := pools.NewServer(opt)
	defer s.Close()
	return s.Preconnect()
}

// requery asks the Sentinels where master's primary is, after a failed
// connection or a -READONLY reply.
func (p *pool) requery(master string) {
	p.haMu.Lock()
	w := p.watcher
	p.haMu.Unlock()
	if w != nil {
		w.Requery(master)
	}
}

// setWatcher starts the Sentinel watcher of the pool's routing, stopping
// one that follows other Sentinels or masters; without sentinels it only
// stops.
func (p *pool) setWatcher() {
	cfg := p.routing().cfg
	opt := p.watcherOptions(cfg)
	p.haMu.Lock()
	if p.watcher != nil && reflect.DeepEqual(p.watcherCfg, cfg.Sentinel) && reflect.DeepEqual(p.watcherMasters, opt.Masters) {
		p.haMu.Unlock()
		return
	}
	old, oldKeeper := p.watcher, p.keeper
	p.watcher, p.keeper = nil, nil
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if cfg.Sentinel.Enabled() && !closed {
		p.watcher = sentinel.New(opt)
		p.watcherCfg, p.watcherMasters = cfg.Sentinel, opt.Masters
		p.watcher.Start()
		if cfg.Sentinel.ReplicaReads {
			p.keeper = p.startReplicas(p.watcher)
		}
	}
	p.haMu.Unlock()
	if oldKeeper != nil {
		oldKeeper.halt()
	}
	if old != nil {
		old.Close()
	}
}

// stopWatcher stops the pool's Sentinel watcher, if it runs.
func (p *pool) stopWatcher() {
	p.haMu.Lock()
	w, k := p.watcher, p.keeper
	p.watcher, p.keeper = nil, nil
	p.haMu.Unlock()
	if k != nil {
		k.halt()
	}
	if w != nil {
		w.Close()
	}
}

// sentinelsUp returns how many of the pool's Sentinels its watcher is
// subscribed to now, and how many there are.
func (p *pool) sentinelsUp() (up, all int) {
	p.haMu.Lock()
	w := p.watcher
	p.haMu.Unlock()
	if w == nil {
		return 0, 0
	}
	for _, ok := range w.Status() {
		all++
		if ok {
			up++
		}
	}
	return up, all
}

var (
	roleCommand     = resp.AppendCommand(nil, []byte("ROLE"))
	rolePrimary     = []byte("*3\r\n$6\r\nmaster\r\n")
	readonlyReply   = []byte("-READONLY")
	errNotAPrimary  = errors.New("ROLE does not say master: not the shard's primary (yet)")
	errRoleNotArray = errors.New("unexpected ROLE reply")
)

// verifyPrimary checks a connection's reply to ROLE: only a primary gets
// the pool's traffic.
func verifyPrimary(reply []byte) error {
	if bytes.HasPrefix(reply, rolePrimary) {
		return nil
	}
	if len(reply) == 0 || reply[0] != '*' {
		return errRoleNotArray
	}
	return errNotAPrimary
}

// withRole returns a copy of handshake frames with ROLE last, for
// verifyPrimary.
func withRole(handshake [][]byte) [][]byte {
	return append(append([][]byte(nil), handshake...), roleCommand)
}

// sentinelOptions adds to a server's options what following Sentinel
// needs: the ROLE check, and a question to the Sentinels on a failed
// connection or a -READONLY reply.
func (p *pool) sentinelOptions(opt *pools.Options, master string) {
	opt.Handshake, opt.Verify = withRole(opt.Handshake), verifyPrimary
	opt.OnFailure = func(error) { p.requery(master) }
	opt.Demoted = readonlyReply
	opt.OnDemoted = func() { p.requery(master) }
}
