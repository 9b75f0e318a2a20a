package sentinel

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Watcher.
type Options struct {
	Addrs    []string      // Sentinel addresses, host:port
	Username string        // ACL user for AUTH to the Sentinels; "" sends AUTH password only
	Password string        // "" sends no AUTH
	Masters  []string      // master names to follow
	Timeout  time.Duration // dial and per-query timeout (default 1 s)
	Retry    time.Duration // pause before redialing a Sentinel whose connection failed (default 1 s)
	// OnSwitch is called when a master's address is learned or changes: from
	// a +switch-master or +promoted-slave message, or from asking every
	// Sentinel (Resolve, Requery, and the re-query each time a subscription
	// connects or reconnects and its Sentinel's answer differs). The first
	// address learned for a master is always reported, later ones only when
	// they differ from the last reported and are not older than it (see
	// the package doc). A caller that moves only when told here is always
	// where the Sentinels last said. Calls never overlap and come in the order the changes were learned. It is
	// called from the Watcher's goroutines, or from Resolve's caller; it
	// must not block long and must not call Resolve.
	OnSwitch func(master, addr string)
	// CheckPrimary, if set, tells whether addr answers as a primary (the
	// proxy's ROLE check). An address one Sentinel names is followed only
	// if it passes, and when Sentinels disagree the newest address that
	// passes wins (vote.go). It is called from the Watcher's goroutines,
	// or from Resolve's caller, and must return within a second or so.
	CheckPrimary func(ctx context.Context, master, addr string) error
	// OnAborted, if set, is called when a Sentinel announces that a
	// failover of master was aborted (-failover-abort-*): the replica it
	// selected (OnPromoting) stays a replica, or is turned back into one,
	// and what it accepted meanwhile is lost. It is called from the
	// subscription's goroutine and must not block.
	OnAborted func(master string)
	// OnPromoting, if set, is called when the Sentinel leading a failover
	// has selected the replica at addr to promote (+selected-slave), before
	// it is promoted: the caller may watch addr and move to it as soon as
	// it answers as a primary, before the failover ends. It is called from
	// the subscription's goroutine and must not block.
	OnPromoting func(master, addr string)
	Logger      *slog.Logger // nil discards the log
}

// Defaults of Options.
const (
	DefaultTimeout = time.Second
	DefaultRetry   = time.Second
)

// Watcher follows the masters of Options.Masters through a group of
// Sentinels. Its methods may be called from any goroutine.
//
// Lock order: reportMu before mu (OnSwitch is called under reportMu and
// may call Requery, which takes mu).
type Watcher struct {
	opt     Options
	log     *slog.Logger
	masters map[string]bool
	ctx     context.Context // cancelled by Close
	cancel  context.CancelFunc
	wg      sync.WaitGroup // every goroutine the Watcher started
	next    atomic.Uint32  // index in opt.Addrs where the next Resolve starts

	mu        sync.Mutex
	started   bool
	up        map[string]bool // subscription up, per Sentinel address
	requeries map[string]*requery

	reportMu sync.Mutex // held while deciding on an address and calling OnSwitch
	known    map[string]known
}

// New returns a Watcher for opt; Start starts following. Resolve,
// Replicas and Requery work without Start. Close releases it.
func New(opt Options) *Watcher {
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	if opt.Retry <= 0 {
		opt.Retry = DefaultRetry
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	var addrs []string
	for _, a := range opt.Addrs {
		if !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	opt.Addrs = addrs
	opt.Masters = slices.Clone(opt.Masters)
	w := &Watcher{
		opt:       opt,
		log:       opt.Logger,
		masters:   map[string]bool{},
		up:        map[string]bool{},
		requeries: map[string]*requery{},
		known:     map[string]known{},
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	for _, m := range opt.Masters {
		w.masters[m] = true
	}
	for _, a := range opt.Addrs {
		w.up[a] = false
	}
	return w
}

// Start subscribes to +switch-master on every Sentinel, one goroutine per
// Sentinel that redials Retry after its connection fails or cannot be made,
// until Close. Each time a subscription is made it asks that Sentinel for
// every master (SENTINEL GET-MASTER-ADDR-BY-NAME), since messages may have
// been missed while it was down, and reports the answers through OnSwitch.
// Start after Start or Close does nothing.
func (w *Watcher) Start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started || w.ctx.Err() != nil {
		return
	}
	w.started = true
	for _, addr := range w.opt.Addrs {
		w.wg.Add(1)
		go w.watch(addr)
	}
}

// Status reports, per Sentinel address, whether its subscription is up.
func (w *Watcher) Status() map[string]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.up)
}

// setUp records whether the subscription to the Sentinel at addr is up.
func (w *Watcher) setUp(addr string, up bool) {
	w.mu.Lock()
	w.up[addr] = up
	w.mu.Unlock()
}

// Close stops every goroutine of the Watcher, closes its connections, and
// returns when they are gone. Resolve and Replicas then fail, Requery does
// nothing.
func (w *Watcher) Close() {
	w.mu.Lock()
	w.cancel() // under mu: no goroutine is added once Wait may have begun
	w.mu.Unlock()
	w.wg.Wait()
}

// sleep waits d, or less when Close is called; it tells whether the
// Watcher is still open.
func (w *Watcher) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-w.ctx.Done():
		return false
	}
}

// source is where an answer about a master's address came from.
type source int

const (
	fromSwitch  source = iota // a +switch-master or +promoted-slave message
	fromRequery               // the answer elected from every Sentinel's (vote.go)
)

// known is what the Watcher last reported for a master.
type known struct {
	addr  string
	epoch int64  // config-epoch of addr, or a floor under it; -1 if unknown
	gen   uint64 // number of addresses reported
}

// update decides whether ans, from src, is a new address for the master to
// report, and records it if so. since is the gen when a requery began. An
// answer with a lower config-epoch than the address reported comes from a
// Sentinel that has not yet learned of a failover: it is stale and left
// out, unless nothing was reported while the Sentinels were asked (then
// the reachable Sentinels agree on it, as after the master was monitored
// afresh, which starts its config-epoch over).
func (k *known) update(ans answer, src source, since uint64) (changed, stale bool) {
	if k.gen > 0 && ans.addr == k.addr {
		k.epoch = max(k.epoch, ans.epoch)
		return false, false
	}
	older := k.gen > 0 && ans.epoch >= 0 && k.epoch >= 0 && ans.epoch < k.epoch
	switch {
	case src == fromSwitch:
		// A failover has just ended: newer than anything known, though
		// the message does not carry the new config-epoch.
		ans.epoch = -1
		if k.gen > 0 && k.epoch >= 0 {
			ans.epoch = k.epoch + 1
		}
	case older && k.gen != since:
		return false, true
	}
	k.addr, k.epoch = ans.addr, ans.epoch
	k.gen++
	return true, false
}

// report decides on ans, an answer for master from src that via
// describes, calls OnSwitch if it is new, and returns the address in
// effect for master: ans.addr, or the newer one reported before.
func (w *Watcher) report(master string, ans answer, src source, since uint64, via string) string {
	w.reportMu.Lock()
	k := w.known[master]
	old := k.addr
	changed, stale := k.update(ans, src, since)
	w.known[master] = k
	if changed {
		w.log.Info("sentinel: master address", "master", master, "old", old, "new", ans.addr, "via", via)
	}
	if changed && w.opt.OnSwitch != nil {
		w.opt.OnSwitch(master, k.addr)
	}
	w.reportMu.Unlock()
	if stale {
		w.log.Debug("sentinel: stale answer", "master", master, "addr", ans.addr, "epoch", ans.epoch,
			"reported", k.addr, "reported_epoch", k.epoch, "via", via)
	}
	return k.addr
}

// knownAddr is the address reported for master, "" before the first.
func (w *Watcher) knownAddr(master string) string {
	w.reportMu.Lock()
	defer w.reportMu.Unlock()
	return w.known[master].addr
}

// gen is the number of addresses reported for master.
func (w *Watcher) gen(master string) uint64 {
	w.reportMu.Lock()
	defer w.reportMu.Unlock()
	return w.known[master].gen
}
