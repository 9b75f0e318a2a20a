package proxy_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

// faultWindow is a stretch of a fault during which the errors on the faulty
// shard must match cause.
type faultWindow struct {
	name  string
	hold  time.Duration
	cause *regexp.Regexp
}

// fault is one fault applied to one backend under load.
type fault struct {
	shard   int
	inject  func()
	windows []faultWindow
	cure    func()
	// cureCause matches the errors allowed between cure and the shard's
	// first success.
	cureCause *regexp.Regexp
}

// runFault applies a fault: it checks the phase before (no error at
// all), each window, the recovery (the shard must answer again within 3 s)
// and a quiet phase after it (no error at all). It returns one summary line
// per phase.
func runFault(t *testing.T, l *load, ft fault, maxLat time.Duration) []string {
	t.Helper()
	var lines []string
	before := l.phase(ft.windows[0].name)
	lines = append(lines, before.check(t, -1, nil, maxLat))
	ft.inject()
	var cured time.Time
	for i, w := range ft.windows {
		time.Sleep(w.hold)
		next := "recover"
		if i+1 < len(ft.windows) {
			next = ft.windows[i+1].name
		} else {
			cured = time.Now() // before the recovery phase starts
		}
		lines = append(lines, l.phase(next).check(t, ft.shard, w.cause, maxLat))
	}
	ft.cure()
	took, ok := l.waitOK(ft.shard, cured, 3*time.Second)
	if !ok {
		t.Errorf("shard %d not served again within 3 s after the fault ended", ft.shard)
	}
	time.Sleep(200 * time.Millisecond)
	rec := l.phase("quiet")
	lines = append(lines, rec.check(t, ft.shard, ft.cureCause, maxLat)+" back after "+took.Round(time.Millisecond).String())
	time.Sleep(500 * time.Millisecond)
	return append(lines, l.phase("between").check(t, -1, nil, maxLat))
}

// TestFaultBackendsUnderLoad applies each fault to one of four backends
// while 40 clients SET and GET their own keys on every shard: requests for
// healthy shards see no error, requests for the faulty one fail with an
// -ERR naming server and cause within the timeout, and the shard is served
// again soon after the server is back.
func TestFaultBackendsUnderLoad(t *testing.T) {
	const timeout = 500 * time.Millisecond
	maxLat := timeout + 400*time.Millisecond
	b := startRedisBackends(t, 4)
	f := startFixture(t, pool{keys: []string{fmt.Sprint("timeout: ", timeout.Milliseconds())}}, b)
	l := startLoad(t, f, 40, 4)
	time.Sleep(300 * time.Millisecond)
	unavailable := func(s int) *regexp.Regexp { return errorCause(f, s, "server unavailable", ".") }
	broken := func(s int) *regexp.Regexp {
		return errorCause(f, s, "server unavailable", "connection closed by server|read: .*connection reset|write: .*(broken pipe|connection reset)")
	}
	hung := errorCause(f, 1, "timeout", `no reply within 500ms$`)
	var lines []string
	lines = append(lines, runFault(t, l, fault{shard: 0, inject: b[0].Kill, windows: []faultWindow{
		{"kill", 300 * time.Millisecond, unavailable(0)},
		{"refused", time.Second, errorCause(f, 0, "server unavailable", "dial tcp .*connection refused$")},
	}, cure: b[0].Restart, cureCause: unavailable(0)}, maxLat)...)
	lines = append(lines, runFault(t, l, fault{shard: 1, inject: func() { stopServer(t, b[1]) }, windows: []faultWindow{
		{"hang", 1500 * time.Millisecond, hung},
	}, cure: b[1].Continue, cureCause: hung}, maxLat)...)
	lines = append(lines, runFault(t, l, fault{shard: 2, inject: b[2].Restart, windows: []faultWindow{
		{"restart", 300 * time.Millisecond, unavailable(2)},
	}, cure: func() {}, cureCause: unavailable(2)}, maxLat)...)
	big := newBigReader(t, f, 3)
	lines = append(lines, runFault(t, l, fault{shard: 3, inject: big.start, windows: []faultWindow{
		{"mid-reply", 1500 * time.Millisecond, broken(3)},
	}, cure: big.halt, cureCause: broken(3)}, maxLat)...)
	l.halt()
	big.check(t)
	for _, s := range lines {
		t.Log(s)
	}
	t.Log(big.summary())
}

// bigReader reads a 10 MB value of one shard through the proxy in a loop
// while CLIENT KILL TYPE normal, sent straight to the backend, closes the
// proxy's connections, so that replies break off in the middle.
type bigReader struct {
	t      *testing.T
	f      *fixture
	shard  int
	key    string
	val    string
	stop   chan struct{}
	wg     sync.WaitGroup
	ok     atomic.Int64
	bad    atomic.Int64
	kills  atomic.Int64
	mu     sync.Mutex
	errs   map[string]int
	broken []string
}

func newBigReader(t *testing.T, f *fixture, shard int) *bigReader {
	t.Helper()
	br := &bigReader{t: t, f: f, shard: shard, key: f.keysOn(shard, "ftbig:", 1)[0],
		val: strings.Repeat("0123456789abcdef", 10<<20/16), stop: make(chan struct{}), errs: map[string]int{}}
	rc := noRetryClient(t, f.addr, nil, 2)
	if err := rc.Set(context.Background(), br.key, br.val, 0).Err(); err != nil {
		t.Fatalf("SET 10 MB value: %v", err)
	}
	return br
}

// start begins reading and killing.
func (br *bigReader) start() {
	rc := noRetryClient(br.t, br.f.addr, nil, 4)
	br.wg.Add(3)
	for i := 0; i < 2; i++ {
		go func() {
			defer br.wg.Done()
			for br.running() {
				got, err := rc.Get(context.Background(), br.key).Result()
				br.note(got, err)
			}
		}()
	}
	go func() {
		defer br.wg.Done()
		for br.running() {
			time.Sleep(30 * time.Millisecond)
			if rep, err := testservers.Do(br.f.backends[br.shard].Addr, "CLIENT", "KILL", "TYPE", "normal"); err == nil && rep != ":0" {
				br.kills.Add(1)
			}
		}
	}()
}

func (br *bigReader) running() bool {
	select {
	case <-br.stop:
		return false
	default:
		return true
	}
}

// note records one read: the whole value, or an error the proxy answered.
func (br *bigReader) note(got string, err error) {
	br.mu.Lock()
	defer br.mu.Unlock()
	switch {
	case err != nil:
		br.bad.Add(1)
		br.errs[err.Error()]++
	case got != br.val:
		br.broken = append(br.broken, fmt.Sprintf("%q", short(got)))
	default:
		br.ok.Add(1)
	}
}

// halt stops reading and killing.
func (br *bigReader) halt() {
	close(br.stop)
	br.wg.Wait()
}

// check verifies that every read got the whole value or a proper error,
// and that some replies did break off.
func (br *bigReader) check(t *testing.T) {
	t.Helper()
	cause := errorCause(br.f, br.shard, "server unavailable", "connection closed by server|read: .*connection reset|write: .*(broken pipe|connection reset)")
	for e, n := range br.errs {
		if !cause.MatchString("shard 3: " + e) {
			t.Errorf("10 MB read: unexpected error %q (%d times)", e, n)
		}
	}
	for _, b := range br.broken {
		t.Errorf("10 MB read returned a wrong value: %s", b)
	}
	if br.ok.Load() == 0 || br.bad.Load() == 0 || br.kills.Load() == 0 {
		t.Errorf("10 MB reads: %s; want some whole reads and some broken off by a kill", br.summary())
	}
}

func (br *bigReader) summary() string {
	return fmt.Sprintf("10 MB reads under CLIENT KILL every 30 ms: %d whole, %d failed with -ERR, %d kills that closed connections",
		br.ok.Load(), br.bad.Load(), br.kills.Load())
}
