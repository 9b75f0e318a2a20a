package failover

import (
	"context"
	"time"

	"github.com/shardproxy/shardproxy/pools"
)

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
// of master will promote the replica at addr. The Follower dials addr
// until ROLE says master, and then holds the shard's requests
// (pools.Server.Hold) until the failover's outcome is known, without
// sending them to either server: the old primary's writes from the
// promotion on are lost if the failover goes on (it becomes a replica of
// addr), and the replica's if it is aborted (the Sentinels turn it back
// into a replica). The outcome is the Sentinels' report of the new
// primary (+promoted-slave, which comes once the leader sees the
// replica's new role, or +switch-master), an abort message, or, after
// holdWait, every Sentinel's answer; the shard then goes where the
// Sentinels say, and its requests follow.
func (f *Follower) promoting(master, addr string) {
	f.mu.Lock()
	if f.probing[master] || f.closed {
		f.mu.Unlock()
		return
	}
	f.probing[master] = true
	f.wg.Add(1)
	f.mu.Unlock()
	go func() {
		defer f.wg.Done()
		defer func() {
			f.mu.Lock()
			delete(f.probing, master)
			f.mu.Unlock()
		}()
		if f.awaitPromotion(master, addr) {
			f.hold(master, addr)
		}
	}()
}

// hold holds the servers of master until the outcome of the failover to
// addr is known (see promoting).
func (f *Follower) hold(master, addr string) {
	servers := f.pool.Servers(master)
	if len(servers) == 0 || servers[0].Addr() == addr {
		return // moved already
	}
	ch := make(chan struct{})
	f.mu.Lock()
	f.outcome[master] = ch
	w := f.watcher
	f.mu.Unlock()
	start := time.Now()
	for _, s := range servers {
		s.Hold()
	}
	defer func() {
		for _, s := range servers {
			s.Release()
		}
		f.log.Info("failover: the shard's requests go on", "server", master, "primary", servers[0].Addr(),
			"held", time.Since(start).Round(time.Millisecond))
	}()
	f.log.Info("failover: the replica being promoted answers as primary: holding the shard's requests until the "+
		"failover ends or is aborted", "server", master, "promoting", addr, "primary", servers[0].Addr())
	t := time.NewTimer(holdWait)
	defer t.Stop()
	select {
	case <-ch:
		return
	case <-f.done:
		return
	case <-t.C:
	}
	f.mu.Lock()
	delete(f.outcome, master)
	f.mu.Unlock()
	if w == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	reported, err := w.Settle(ctx, master)
	f.log.Warn("failover: no outcome announced: following every Sentinel's answer", "server", master,
		"promoting", addr, "reported", reported, "err", err)
}

// awaitPromotion dials addr with the options of master's line until ROLE
// says master, for promoteWait at most; it reports whether it did.
func (f *Follower) awaitPromotion(master, addr string) bool {
	deadline := time.Now().Add(promoteWait)
	for time.Now().Before(deadline) {
		if f.probePrimary(master, addr) == nil {
			return true
		}
		select {
		case <-f.done:
			return false
		case <-time.After(promotePoll):
		}
	}
	return false
}

// probePrimary dials addr once with the options of master's line and
// checks that ROLE says master.
func (f *Follower) probePrimary(master, addr string) error {
	opt, err := f.pool.Options(master, addr)
	if err != nil {
		return err
	}
	// The line's options, with the ROLE check of a primary but no
	// questions to the Sentinels, one connection and a short timeout.
	opt.Handshake, opt.Verify = withRole(opt.Handshake), verifyPrimary
	opt.Addr, opt.Timeout, opt.AutoEject, opt.Connections, opt.Logger = addr, promoteProbeTimeout, false, 1, nil
	s := pools.NewServer(opt)
	defer s.Close()
	return s.Preconnect()
}
