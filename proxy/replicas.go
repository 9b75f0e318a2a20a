package proxy

import (
	"context"
	"crypto/x509"
	"slices"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/pools"
	"github.com/shardproxy/shardproxy/sentinel"
)

// With replica_reads, the read-only commands of a shard (command.readonly)
// go to one of its replicas, as the Sentinels list them, when one is up;
// else to its primary. A replica lags its primary, so a read there may
// miss a write just acknowledged, even one of the same client (the README
// says so). Reads never go to a replica during a migration: the new owner's
// replica may not have a moved key yet.

// replicaRefresh is how often the replicas are asked for again.
const replicaRefresh = 2 * time.Second

// replicaKeeper keeps one replica server per master of a pool with
// replica_reads, from the Sentinels' lists.
type replicaKeeper struct {
	p    *pool
	w    *sentinel.Watcher
	kick chan struct{} // asks for a refresh now (a failover)
	stop chan struct{}
	done chan struct{}
}

// replicaFor returns the server reads of primary's keys go to: its
// replica when the pool has one up, else nil.
func (p *pool) replicaFor(primary *pools.Server) *pools.Server {
	v, ok := p.replicas.Load(primary.Name())
	if !ok {
		return nil
	}
	r := v.(*pools.Server)
	if r.Down() {
		return nil
	}
	return r
}

// readServer returns the server a request of cmd for ring index i goes
// to: the replica of its primary for a read-only command when the pool
// reads from replicas, else the primary.
func (p *pool) readServer(rt *routing, cmd *command, i int) *pools.Server {
	srv := rt.ring[i]
	if cmd.readonly && rt.replicaReads {
		if r := p.replicaFor(srv); r != nil {
			return r
		}
	}
	return srv
}

func (k *replicaKeeper) run() {
	defer close(k.done)
	t := time.NewTicker(replicaRefresh)
	defer t.Stop()
	for {
		k.refresh()
		select {
		case <-k.stop:
			return
		case <-t.C:
		case <-k.kick:
		}
	}
}

// refresh asks the Sentinels for each master's replicas and keeps one up
// to date per master: the one it has while listed, else the first listed
// that is not the primary; none when none is listed.
func (k *replicaKeeper) refresh() {
	p := k.p
	cfg := p.routing().cfg
	roots, err := serverRoots(cfg)
	if err != nil {
		return
	}
	for _, line := range cfg.Servers {
		ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
		addrs, err := k.w.Replicas(ctx, line.Ident)
		cancel()
		if err != nil {
			continue // keep what it has
		}
		addrs = slices.DeleteFunc(addrs, func(a string) bool { return a == p.primaryAddr(cfg, line) })
		v, have := p.replicas.Load(line.Ident)
		var cur *pools.Server
		if have {
			cur = v.(*pools.Server)
		}
		switch {
		case len(addrs) == 0 && cur != nil:
			p.replicas.Delete(line.Ident)
			p.log.Info("replica reads: no replica listed: reads go to the primary", "server", line.Ident)
			p.retire(cur)
		case len(addrs) == 0:
		case cur == nil:
			r := pools.NewServer(p.replicaOptions(cfg, line, addrs[0], roots))
			p.replicas.Store(line.Ident, r)
			p.log.Info("replica reads: reading from a replica", "server", line.Ident, "replica", addrs[0])
		case !slices.Contains(addrs, cur.Addr()):
			p.log.Info("replica reads: another replica", "server", line.Ident, "from", cur.Addr(), "to", addrs[0])
			cur.SetAddr(addrs[0])
		case cur.Down():
			cur.Preconnect() // back to reads once it answers
		}
	}
}

// replicaOptions are the options of the replica server of line at addr:
// the line's, without the checks and questions of a primary.
func (p *pool) replicaOptions(cfg *config.Pool, line config.Server, addr string, roots *x509.CertPool) pools.Options {
	opt := p.serverOptions(cfg, line, roots)
	opt.Addr = addr
	opt.Handshake = opt.Handshake[:len(opt.Handshake)-1] // without ROLE
	opt.Verify, opt.OnFailure, opt.Demoted, opt.OnDemoted = nil, nil, nil, nil
	opt.AutoEject, opt.FailFast = false, false
	return opt
}

// startReplicas starts the keeper of the pool's replicas for watcher w.
func (p *pool) startReplicas(w *sentinel.Watcher) *replicaKeeper {
	k := &replicaKeeper{p: p, w: w, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go k.run()
	return k
}

// halt stops the keeper and closes the replica servers it kept.
func (k *replicaKeeper) halt() {
	close(k.stop)
	<-k.done
	k.p.replicas.Range(func(name, v any) bool {
		k.p.replicas.Delete(name)
		v.(*pools.Server).Close()
		return true
	})
}

// refreshSoon asks the keeper for a refresh now: after a failover the
// old primary may be listed as a replica, the new one no longer.
func (k *replicaKeeper) refreshSoon() {
	select {
	case k.kick <- struct{}{}:
	default:
	}
}

// retire closes a replica server no longer used once what it was asked
// is answered.
func (p *pool) retire(s *pools.Server) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.drainServer(s)
	}()
}
