package proxy

import (
	"time"

	"github.com/shardproxy/shardproxy/pools"
)

// abort undoes a prepared plan: it closes what was made for it. A socket
// a handover would have passed was not touched: its pool keeps it.
func (plan *reloadPlan) abort() {
	for _, np := range plan.added {
		np.close()
	}
	for _, ch := range plan.changed {
		for _, s := range ch.fresh {
			s.Close()
		}
		if ch.ln != nil {
			ch.ln.Close()
		}
	}
}

// commit applies a prepared plan.
//
// A socket that passes to another pool is accepted on by its old pool
// until the new one takes it: then the old accept loop stops and the new
// one starts at once.
func (px *Proxy) commit(plan *reloadPlan) {
	for _, ch := range plan.changed {
		px.commitChange(ch, plan.handed)
	}
	for _, p := range plan.removed {
		if l := p.listener(); l != nil && !plan.handed[l] {
			l.Close()
		}
	}
	px.mu.Lock()
	px.pools = plan.pools
	px.mu.Unlock()
	for _, np := range plan.added {
		px.startPool(np, plan.takes[np])
	}
	for _, ch := range plan.changed {
		if ch.cfg.Preconnect {
			// Its new servers, or all of them when preconnect was
			// just turned on, as a start would.
			ch.p.preconnect()
		}
	}
	for _, p := range plan.removed {
		px.mu.Lock()
		px.leaving[p] = true
		px.mu.Unlock()
		px.wg.Add(1)
		go func() {
			defer px.wg.Done()
			p.drain()
			px.mu.Lock()
			delete(px.leaving, p)
			px.mu.Unlock()
		}()
	}
}

// commitChange swaps a changed pool's routing in and moves its listener;
// a listener in handed is another pool's to take, not closed here.
func (px *Proxy) commitChange(ch *poolChange, handed map[*listener]bool) {
	p := ch.p
	p.ringMu.Lock()
	if p.cluster != nil {
		cur := p.routing()
		ch.rt = newClusterRouting(ch.cfg, cur.clusterMap, cur.ring, cur.clusterReplicas).migrating(ch.rt)
		p.cluster.keeper.SetConfig(ch.cfg)
	}
	p.rt.Store(ch.rt)
	p.ringMu.Unlock()
	p.setMover()
	p.follow()
	p.probe() // its new servers, without waiting for the prober's tick
	for _, s := range ch.gone {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.drainServer(s)
		}()
	}
	if !ch.listener {
		p.mu.Lock()
		p.cfg = ch.cfg
		p.mu.Unlock()
		p.ensureParker()
		return
	}
	p.mu.Lock()
	old := p.ln
	p.cfg = ch.cfg
	p.tls = ch.tls
	p.mu.Unlock()
	if old != nil && !handed[old] {
		old.Close()
	}
	ln := ch.ln
	if ch.h != nil {
		ln = ch.h.take(ch.tls)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		ln.Close()
		return
	}
	p.ln = ln
	p.startServing(ln)
	p.mu.Unlock()
	p.ensureParker()
	px.log.Info("pool listening", "pool", ch.cfg.Name, "listen", ln.Addr().String())
}

// drainServer closes a server that left the ring once the requests queued
// on it are answered and its sessions (transactions, blocking commands)
// have ended, or after drainTimeout.
func (p *pool) drainServer(s *pools.Server) {
	deadline := time.Now().Add(drainTimeout)
	for time.Now().Before(deadline) {
		q := s.Queues()
		if q.In+q.Out == 0 && s.SessionsInUse() == 0 {
			break
		}
		select {
		case <-p.done:
			s.Close()
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	s.Close()
}

// stopListening closes the pool's listener.
func (p *pool) stopListening() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
	}
	p.mu.Unlock()
}

// drain closes a pool that a reload removed: each client closes once its
// requests in flight are answered (idle ones at once), then the pool
// closes, at the latest after drainTimeout.
func (p *pool) drain() {
	p.quiesce(drainTimeout)
	p.close()
	p.log.Info("pool removed")
}

// quiesce stops the pool's listener and lets each client go once its
// requests in flight are answered (idle ones at once), waiting at most d
// for the last one.
func (p *pool) quiesce(d time.Duration) {
	p.stopListening()
	p.draining.Store(true)
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, pk := range p.parkers() {
			pk.evict() // parked clients are idle: closed now
		}
		p.mu.Lock()
		n := len(p.clients)
		for cl := range p.clients {
			// A client waiting for a request wakes up and leaves; one
			// being answered leaves after its replies.
			cl.wakeReader()
		}
		p.mu.Unlock()
		if n == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
}
