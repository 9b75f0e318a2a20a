package proxytest

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// loadPhase collects the outcomes of the load while one fault is applied.
type loadPhase struct {
	name      string
	started   time.Time
	ended     time.Time
	ops, errs []int           // per shard
	maxLat    []time.Duration // per shard, over every request
	firstOK   []time.Time     // per shard, first success in the phase
	LastErr   []time.Time     // per shard
	stale     []int           // per shard: nil or an older value of the same key
	late      int             // older value whose SET had failed (applied late)
	wrong     []string        // values of another key or client
	causes    map[string]int  // "shard i: error text" -> count
}

func newLoadPhase(name string, shards int) *loadPhase {
	return &loadPhase{name: name, started: time.Now(), ops: make([]int, shards), errs: make([]int, shards),
		maxLat: make([]time.Duration, shards), firstOK: make([]time.Time, shards),
		LastErr: make([]time.Time, shards), stale: make([]int, shards), causes: map[string]int{}}
}

// Load runs client goroutines through a go-redis client; each SETs then
// GETs its own keys, which span every shard, and records every outcome in
// the current phase.
type Load struct {
	f    *Fixture
	rc   *redis.Client
	rc3  *redis.Client // the odd goroutines speak RESP3 (HELLO 3)
	mu   sync.Mutex
	ph   *loadPhase
	stop chan struct{}
	wg   sync.WaitGroup
}

// StartLoad starts n goroutines; each owns keysPerShard keys per shard,
// but the first one per shard owns keys on its shard only.
func StartLoad(t *testing.T, f *Fixture, n, keysPerShard int) *Load {
	l := &Load{f: f, rc: NoRetryClient(t, f.Addr, nil, n+8), rc3: noRetryClient(t, f.Addr, nil, n+8, 3), stop: make(chan struct{}),
		ph: newLoadPhase("start", len(f.Backends))}
	for g := 0; g < n; g++ {
		var keys []string
		for s := range f.Backends {
			// The first clients each keep to one shard: clients that
			// cycle through every shard can all end up waiting on a
			// hung one, and then no request tests the healthy ones.
			if g < len(f.Backends) && s != g {
				continue
			}
			keys = append(keys, f.KeysOn(s, fmt.Sprintf("ftload:%d:", g), keysPerShard)...)
		}
		l.wg.Add(1)
		go l.run(g, keys)
	}
	t.Cleanup(l.Halt)
	return l
}

// Halt stops the goroutines and waits for them.
func (l *Load) Halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// Phase ends the current Phase and starts a new one; it returns the ended
// Phase.
func (l *Load) Phase(name string) *loadPhase {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.ph
	old.ended = time.Now()
	l.ph = newLoadPhase(name, len(l.f.Backends))
	return old
}

// run is one client goroutine.
func (l *Load) run(g int, keys []string) {
	defer l.wg.Done()
	failed := map[string]map[int]bool{}
	for seq := 0; ; seq++ {
		select {
		case <-l.stop:
			return
		default:
		}
		key := keys[seq%len(keys)]
		shard := l.f.shardOf(key)
		val := fmt.Sprintf("g%d:%s:%d", g, key, seq)
		rc := l.rc
		if g%2 == 1 {
			rc = l.rc3
		}
		if !l.record(shard, l.op(func(ctx context.Context) error { return rc.Set(ctx, key, val, 0).Err() })) {
			if failed[key] == nil {
				failed[key] = map[int]bool{}
			}
			failed[key][seq] = true
			continue
		}
		var got string
		var gerr error
		ok := l.record(shard, l.op(func(ctx context.Context) error {
			got, gerr = rc.Get(ctx, key).Result()
			return ignoreNil(gerr)
		}))
		if ok && got != val {
			l.mismatch(shard, fmt.Sprintf("g%d:%s:", g, key), got, failed[key])
		}
	}
}

func ignoreNil(err error) error {
	if errors.Is(err, redis.Nil) {
		return nil
	}
	return err
}

// outcome is one request's latency and error text ("" on success).
type outcome struct {
	lat time.Duration
	err string
}

// op runs one request and measures it.
func (l *Load) op(fn func(context.Context) error) outcome {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err := fn(ctx)
	out := outcome{lat: time.Since(start)}
	if err != nil {
		var re redis.Error
		if errors.As(err, &re) {
			out.err = err.Error()
		} else {
			out.err = "client: " + err.Error()
		}
	}
	return out
}

// record adds an outcome to the current phase and reports success.
func (l *Load) record(shard int, o outcome) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Read the clock under the lock, so that an outcome recorded in a
	// phase is never dated before the phase began (WaitOK compares with a
	// time taken before the switch).
	now := time.Now()
	ph := l.ph
	ph.ops[shard]++
	ph.maxLat[shard] = max(ph.maxLat[shard], o.lat)
	if o.err == "" {
		if ph.firstOK[shard].IsZero() {
			ph.firstOK[shard] = now
		}
		return true
	}
	ph.errs[shard]++
	ph.LastErr[shard] = now
	ph.causes[fmt.Sprintf("shard %d: %s", shard, o.err)]++
	return false
}

// mismatch classifies a GET that did not return the value just written.
func (l *Load) mismatch(shard int, prefix, got string, failed map[int]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if got == "" {
		l.ph.stale[shard]++
		return
	}
	rest, own := strings.CutPrefix(got, prefix)
	seq, err := strconv.Atoi(rest)
	switch {
	case !own || err != nil:
		l.ph.wrong = append(l.ph.wrong, fmt.Sprintf("shard %d: want %s<seq>, got %q", shard, prefix, got))
	case failed[seq]:
		l.ph.late++
	default:
		l.ph.stale[shard]++
	}
}

// WaitOK waits until the current phase has a success on shard, and
// returns how long that took from since.
func (l *Load) WaitOK(shard int, since time.Time, limit time.Duration) (time.Duration, bool) {
	for time.Since(since) < limit {
		l.mu.Lock()
		ok := l.ph.firstOK[shard]
		l.mu.Unlock()
		if !ok.IsZero() && ok.After(since) {
			return ok.Sub(since), true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, false
}

// Check verifies a phase: no error and no stale read outside the faulty
// shard (-1: none), errors on it matching cause, every request within
// maxLat, and no value of another key or client. It returns a summary.
func (ph *loadPhase) Check(t *testing.T, faulty int, cause *regexp.Regexp, maxLat time.Duration) string {
	t.Helper()
	var sum strings.Builder
	fmt.Fprintf(&sum, "%-12s", ph.name)
	for s := range ph.ops {
		mark := ""
		if s == faulty {
			mark = "*"
		}
		fmt.Fprintf(&sum, " %s%d: %d ops %d err max %v;", mark, s, ph.ops[s], ph.errs[s], ph.maxLat[s].Round(time.Millisecond))
		if ph.ops[s] == 0 && ph.ended.Sub(ph.started) > 200*time.Millisecond {
			t.Errorf("%s: no request reached shard %d", ph.name, s)
		}
		if s != faulty && (ph.errs[s] > 0 || ph.stale[s] > 0) {
			t.Errorf("%s: healthy shard %d: %d errors, %d stale reads", ph.name, s, ph.errs[s], ph.stale[s])
		}
		if ph.maxLat[s] > maxLat {
			t.Errorf("%s: shard %d: a request took %v, more than %v", ph.name, s, ph.maxLat[s], maxLat)
		}
	}
	if faulty >= 0 {
		fmt.Fprintf(&sum, " stale %d late %d", ph.stale[faulty], ph.late)
	}
	for _, w := range ph.wrong {
		t.Errorf("%s: %s", ph.name, w)
	}
	for _, c := range ph.sortedCauses() {
		if cause == nil || !cause.MatchString(c) {
			t.Errorf("%s: unexpected error %q (%d times)", ph.name, c, ph.causes[c])
		}
	}
	return sum.String()
}

func (ph *loadPhase) sortedCauses() []string {
	out := make([]string, 0, len(ph.causes))
	for c := range ph.causes {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// ErrorCause matches the errors a client may see for shard's server: an -ERR
// with the given kinds (such as "server unavailable") naming the server,
// and a cause matching causes.
func ErrorCause(f *Fixture, shard int, kinds, causes string) *regexp.Regexp {
	return regexp.MustCompile(fmt.Sprintf(`^shard %d: ERR (%s): %s: (%s)`, shard, kinds,
		regexp.QuoteMeta(f.Idents[shard]), causes))
}
