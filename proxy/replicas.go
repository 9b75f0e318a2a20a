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
// go to its replicas, as the Sentinels list them, spread by client, when
// one is up; else to its primary. A replica lags its primary, so a read
// there may miss a write just acknowledged, even one of the same client
// (the README says so). Reads never go to a replica during a migration:
// the new owner's replica may not have a moved key yet.

// replicaRefresh is how often the replicas are asked for again.
const replicaRefresh = 2 * time.Second

// replicaKeeper keeps the replica servers of each master of a pool with
// replica_reads, from the Sentinels' lists.
type replicaKeeper struct {
	p    *pool
	w    *sentinel.Watcher
	kick chan struct{} // asks for a refresh now (a failover)
	stop chan struct{}
	done chan struct{}
}

// replicaFor returns the server the reads of client id for primary's keys
// go to: one of its replicas, spread by client, skipping those down; nil
// when the pool has none up.
func (p *pool) replicaFor(primary *pools.Server, id uint64) *pools.Server {
	rs := p.replicaServers(primary.Name())
	for j := range rs {
		if r := rs[(id+uint64(j))%uint64(len(rs))]; !r.Down() {
			return r
		}
	}
	return nil
}

// replicaServers returns the replica servers of master, in address order.
func (p *pool) replicaServers(master string) []*pools.Server {
	v, ok := p.replicas.Load(master)
	if !ok {
		return nil
	}
	return v.([]*pools.Server)
}

// readServer returns the server a request of client id and cmd for ring
// index i goes to: a replica of its primary for a read-only command when
// the pool reads from replicas, else the primary.
func (p *pool) readServer(rt *routing, cmd *command, i int, id uint64) *pools.Server {
	srv := rt.ring[i]
	if cmd.readonly && rt.replicaReads {
		if r := p.replicaFor(srv, id); r != nil {
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

// refresh asks the Sentinels for each master's replicas and keeps a server
// for each listed (but the primary), in address order: reads are spread
// over them by client. A replica no longer listed is retired once its
// requests are answered; one down is dialled, to be used again once it
// answers. A master whose list cannot be had keeps its replicas.
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
			continue
		}
		primary := p.primaryAddr(cfg, line)
		addrs = slices.DeleteFunc(addrs, func(a string) bool { return a == primary })
		slices.Sort(addrs)
		cur := p.replicaServers(line.Ident)
		next := make([]*pools.Server, 0, len(addrs))
		for _, a := range addrs {
			i := slices.IndexFunc(cur, func(s *pools.Server) bool { return s.Addr() == a })
			if i < 0 {
				next = append(next, pools.NewServer(p.replicaOptions(cfg, line, a, roots)))
				continue
			}
			if cur[i].Down() {
				cur[i].Preconnect() // back to reads once it answers
			}
			next = append(next, cur[i])
		}
		if slices.Equal(next, cur) {
			continue
		}
		if len(next) == 0 {
			p.replicas.Delete(line.Ident)
		} else {
			p.replicas.Store(line.Ident, next)
		}
		p.log.Info("replica reads: replicas", "server", line.Ident, "replicas", addrs)
		for _, s := range cur {
			if !slices.Contains(next, s) {
				p.retire(s)
			}
		}
	}
}

// replicaOptions are the options of the replica server of line at addr:
// the line's, without the checks and questions of a primary, and never
// ejected (a replica down is skipped, see replicaFor).
func (p *pool) replicaOptions(cfg *config.Pool, line config.Server, addr string, roots *x509.CertPool) pools.Options {
	opt := p.baseServerOptions(cfg, line, roots)
	opt.Addr, opt.AutoEject, opt.FailFast = addr, false, false
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
		for _, s := range v.([]*pools.Server) {
			s.Close()
		}
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
