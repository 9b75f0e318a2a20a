package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardproxy/shardproxy/codec/resp"
)

// View is one node's answer: its slot map and its current epoch.
type View struct {
	Map   *Map
	Epoch int64
	From  string // the node that answered
	// Taken is when the answer arrived.
	Taken time.Time
}

// Fetch asks the node at addr for CLUSTER INFO and CLUSTER SLOTS and
// returns their raw replies. It is given a context that bounds it.
type Fetch func(ctx context.Context, addr string) (info, slots []byte, err error)

// Options tune a Topology; zero values take the defaults.
type Options struct {
	// Period is how often the map is refreshed without a cause
	// (DefaultPeriod).
	Period time.Duration
	// MinGap is the least time between two refreshes: the causes that
	// arrive meanwhile are served by one refresh (DefaultMinGap).
	MinGap time.Duration
	// FetchTimeout bounds one node's answer (DefaultFetchTimeout).
	FetchTimeout time.Duration
	// RetryGap is how soon a refresh that took no view is tried again,
	// without a cause (DefaultRetryGap): seeds that were down at start
	// are found once one answers, not a Period later.
	RetryGap time.Duration
}

// Defaults of Options.
const (
	DefaultPeriod       = 5 * time.Second
	DefaultMinGap       = 100 * time.Millisecond
	DefaultFetchTimeout = 2 * time.Second
	DefaultRetryGap     = 500 * time.Millisecond
)

// staleAccept is how many refreshes in a row may find only views of an
// older epoch before the best of them is taken anyway: a cluster made
// again from nothing starts its epochs over.
const staleAccept = 3

// Topology keeps a cluster's slot map fresh: at start, every Period, and
// when Refresh asks (a MOVED, a CLUSTERDOWN, a node that cannot be
// reached). Refreshes are coalesced (at most one per MinGap), each asks
// the known nodes in turn, starting from the next one each time so that
// no node takes them all, then the seeds; a view whose epoch is older
// than the last one taken is refused (a node cut off from the majority
// keeps an old map). Each view taken is handed to apply, from the
// Topology's goroutine.
type Topology struct {
	fetch Fetch
	apply func(*View)
	log   *slog.Logger
	opt   Options
	kick  chan struct{}

	// Counters, for stats.
	Refreshes, Failures, Stale atomic.Int64

	mu        sync.Mutex
	seeds     []string
	known     []string // the nodes of the last view taken: primaries, then replicas
	next      int      // where the next refresh starts in known
	epoch     int64
	staleRuns int
	last      *View
	lastErr   error
}

// NewTopology returns a Topology over seeds; Run starts it.
func NewTopology(seeds []string, fetch Fetch, apply func(*View), opt Options, log *slog.Logger) *Topology {
	if opt.Period <= 0 {
		opt.Period = DefaultPeriod
	}
	if opt.MinGap <= 0 {
		opt.MinGap = DefaultMinGap
	}
	if opt.FetchTimeout <= 0 {
		opt.FetchTimeout = DefaultFetchTimeout
	}
	if opt.RetryGap <= 0 {
		opt.RetryGap = DefaultRetryGap
	}
	return &Topology{fetch: fetch, apply: apply, log: log, opt: opt, kick: make(chan struct{}, 1),
		seeds: slices.Clone(seeds)}
}

// SetSeeds replaces the seed nodes (a reload).
func (t *Topology) SetSeeds(seeds []string) {
	t.mu.Lock()
	t.seeds = slices.Clone(seeds)
	t.mu.Unlock()
}

// Refresh asks for a refresh soon; it never blocks, and many calls
// before the refresh starts make one.
func (t *Topology) Refresh() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// Last returns the last view taken (nil before the first) and the error
// of the last refresh (nil when it took a view).
func (t *Topology) Last() (*View, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last, t.lastErr
}

// Run refreshes until done is closed: at once, then on Refresh and every
// Period, or RetryGap after a refresh that took no view.
func (t *Topology) Run(done <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-done:
			cancel()
		case <-ctx.Done():
		}
	}()
	tick := time.NewTicker(t.opt.Period)
	defer tick.Stop()
	gap := time.NewTimer(0)
	defer gap.Stop()
	retry := time.NewTimer(t.opt.RetryGap)
	defer retry.Stop()
	for {
		took := t.refresh(ctx)
		// At most one refresh per MinGap, whatever asks.
		gap.Reset(t.opt.MinGap)
		select {
		case <-done:
			return
		case <-gap.C:
		}
		var again <-chan time.Time
		if !took {
			retry.Reset(max(t.opt.RetryGap-t.opt.MinGap, 0))
			again = retry.C
		}
		select {
		case <-done:
			return
		case <-t.kick:
		case <-tick.C:
		case <-again:
		}
	}
}

// refresh asks the nodes in turn until one gives a view it takes, and
// reports whether one did.
func (t *Topology) refresh(ctx context.Context) bool {
	t.Refreshes.Add(1)
	t.mu.Lock()
	order := make([]string, 0, len(t.known)+len(t.seeds))
	for i := range t.known {
		order = append(order, t.known[(t.next+i)%len(t.known)])
	}
	if len(t.known) > 0 {
		t.next = (t.next + 1) % len(t.known)
	}
	for _, s := range t.seeds {
		if !slices.Contains(order, s) {
			order = append(order, s)
		}
	}
	epoch := t.epoch
	t.mu.Unlock()
	var errs []error
	var best *View
	for _, addr := range order {
		if ctx.Err() != nil {
			return false
		}
		v, err := t.ask(ctx, addr)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if v.Epoch < epoch {
			t.Stale.Add(1)
			if best == nil || v.Epoch > best.Epoch {
				best = v
			}
			errs = append(errs, fmt.Errorf("%s: epoch %d is older than %d", addr, v.Epoch, epoch))
			continue
		}
		t.take(v)
		return true
	}
	t.mu.Lock()
	if best != nil {
		if t.staleRuns++; t.staleRuns >= staleAccept {
			t.mu.Unlock()
			t.log.Warn("cluster: taking a slot map of an older epoch, the newest any node has",
				"epoch", best.Epoch, "from", best.From)
			t.take(best)
			return true
		}
	}
	t.lastErr = errors.Join(errs...)
	if len(order) == 0 {
		t.lastErr = errors.New("no seed node")
	}
	err := t.lastErr
	t.mu.Unlock()
	t.Failures.Add(1)
	t.log.Warn("cluster: no node gave a slot map", "err", err)
	return false
}

// take makes v the current view and applies it.
func (t *Topology) take(v *View) {
	t.mu.Lock()
	t.epoch, t.last, t.lastErr, t.staleRuns = v.Epoch, v, nil, 0
	t.known = t.known[:0]
	for _, s := range v.Map.Shards {
		t.known = append(t.known, s.Primary.Addr)
	}
	for _, s := range v.Map.Shards {
		for _, r := range s.Replicas {
			t.known = append(t.known, r.Addr)
		}
	}
	if t.next >= len(t.known) {
		t.next = 0
	}
	t.mu.Unlock()
	t.apply(v)
}

// ask fetches and parses one node's view.
func (t *Topology) ask(ctx context.Context, addr string) (*View, error) {
	ctx, cancel := context.WithTimeout(ctx, t.opt.FetchTimeout)
	defer cancel()
	info, slots, err := t.fetch(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	epoch, err := CurrentEpoch(info)
	if err != nil {
		return nil, fmt.Errorf("%s: CLUSTER INFO: %w", addr, err)
	}
	v, _, err := resp.ParseValue(slots)
	if err != nil {
		return nil, fmt.Errorf("%s: CLUSTER SLOTS: %w", addr, err)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	m, err := ParseSlots(v, host)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	return &View{Map: m, Epoch: epoch, From: addr, Taken: time.Now()}, nil
}

// CurrentEpoch reads cluster_current_epoch from a CLUSTER INFO reply.
func CurrentEpoch(info []byte) (int64, error) {
	v, _, err := resp.ParseValue(info)
	if err != nil {
		return 0, err
	}
	if v.IsError() {
		return 0, fmt.Errorf("%s", resp.Clip(v.Str))
	}
	body, ok := v.Bulk()
	if !ok {
		return 0, errors.New("not a bulk string")
	}
	const field = "cluster_current_epoch:"
	i := bytes.Index(body, []byte(field))
	if i < 0 {
		return 0, errors.New("no cluster_current_epoch")
	}
	line := body[i+len(field):]
	if j := bytes.IndexAny(line, "\r\n"); j >= 0 {
		line = line[:j]
	}
	return strconv.ParseInt(string(line), 10, 64)
}
