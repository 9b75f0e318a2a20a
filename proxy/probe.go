package proxy

import (
	"time"

	"github.com/shardproxy/shardproxy/pools"
)

// Whether a server serves is known only from a connection to it or a check
// of it (pools.Server.Up): a server never dialled is not counted as
// reachable (stats.Pool.Ready). Each pool's prober checks, in the
// background, every server not known to serve: at Start, then each
// second those down or not known yet (an ejected one has its own health
// check), so a pool whose servers come back turns ready without a
// request. It checks every replica of replica_reads each second too: a
// replica that answers may have stopped replicating or started loading.
// A check is one short connection (the handshake and a PING or version),
// not counted as traffic; a server known to serve is not checked.

// probeInterval is how often a pool's servers not known to serve are
// checked.
const probeInterval = time.Second

// startProbeWait bounds how long Start waits for the first checks, so
// that readiness is known when it returns, in the common case.
const startProbeWait = time.Second

// startProber checks the pool's servers now and starts its prober; it
// returns the ends of the checks started.
func (p *pool) startProber() []<-chan struct{} {
	first := p.probe()
	p.wg.Add(1)
	go p.probeLoop()
	return first
}

// probeLoop checks the pool's servers each probeInterval until the pool
// closes.
func (p *pool) probeLoop() {
	defer p.wg.Done()
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
		}
		p.probe()
	}
}

// probe starts a check of each server of the pool not known to serve and
// not ejected, and of each replica; it returns the ends of the checks of
// the servers.
func (p *pool) probe() []<-chan struct{} {
	var started []<-chan struct{}
	for _, s := range p.routing().servers {
		if !s.Up() && !s.Ejected() {
			started = append(started, s.Probe())
		}
	}
	p.follower.EachReplica(func(r *pools.Server) { r.Probe() })
	probeClusterReplicas(p.routing())
	return started
}

// awaitProbes waits until every check of checks has ended, or d has passed.
func awaitProbes(checks []<-chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for _, c := range checks {
		select {
		case <-c:
		case <-t.C:
			return
		}
	}
}
