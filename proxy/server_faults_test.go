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

	"github.com/shardproxy/shardproxy/internal/proxytest"
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
func runFault(t *testing.T, l *proxytest.Load, ft fault, maxLat time.Duration) []string {
	t.Helper()
	var lines []string
	before := l.Phase(ft.windows[0].name)
	lines = append(lines, before.Check(t, -1, nil, maxLat))
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
		lines = append(lines, l.Phase(next).Check(t, ft.shard, w.cause, maxLat))
	}
	ft.cure()
	took, ok := l.WaitOK(ft.shard, cured, 3*time.Second)
	if !ok {
		t.Errorf("shard %d not served again within 3 s after the fault ended", ft.shard)
	}
	time.Sleep(200 * time.Millisecond)
	rec := l.Phase("quiet")
	lines = append(lines, rec.Check(t, ft.shard, ft.cureCause, maxLat)+" back after "+took.Round(time.Millisecond).String())
	time.Sleep(500 * time.Millisecond)
	return append(lines, l.Phase("between").Check(t, -1, nil, maxLat))
}

// TestFaultBackendsUnderLoad applies each fault to one of four backends
// while 40 clients SET and GET their own keys on every shard: requests for
// healthy shards see no error, requests for the faulty one fail with an
// -ERR naming server and cause within the timeout, and the shard is served
// again soon after the server is back.
func TestFaultBackendsUnderLoad(t *testing.T) {
	const timeout = 500 * time.Millisecond
	maxLat := timeout + 400*time.Millisecond
	b := proxytest.StartRedisBackends(t, 4)
	f := proxytest.StartFixture(t, proxytest.Pool{Keys: []string{fmt.Sprint("timeout: ", timeout.Milliseconds())}}, b)
	l := proxytest.StartLoad(t, f, 40, 4)
	time.Sleep(300 * time.Millisecond)
	unavailable := func(s int) *regexp.Regexp { return proxytest.ErrorCause(f, s, "server unavailable", ".") }
	broken := func(s int) *regexp.Regexp {
		return proxytest.ErrorCause(f, s, "server unavailable", "connection closed by server|read: .*connection reset|write: .*(broken pipe|connection reset)")
	}
	hung := proxytest.ErrorCause(f, 1, "timeout", `no reply within 500ms$`)
	var lines []string
	lines = append(lines, runFault(t, l, fault{shard: 0, inject: b[0].Kill, windows: []faultWindow{
		{"kill", 300 * time.Millisecond, unavailable(0)},
		{"refused", time.Second, proxytest.ErrorCause(f, 0, "server unavailable", "dial tcp .*connection refused$")},
	}, cure: b[0].Restart, cureCause: unavailable(0)}, maxLat)...)
	lines = append(lines, runFault(t, l, fault{shard: 1, inject: func() { proxytest.StopServer(t, b[1]) }, windows: []faultWindow{
		{"hang", 1500 * time.Millisecond, hung},
	}, cure: b[1].Continue, cureCause: hung}, maxLat)...)
	lines = append(lines, runFault(t, l, fault{shard: 2, inject: b[2].Restart, windows: []faultWindow{
		{"restart", 300 * time.Millisecond, unavailable(2)},
	}, cure: func() {}, cureCause: unavailable(2)}, maxLat)...)
	big := newBigReader(t, f, 3)
	lines = append(lines, runFault(t, l, fault{shard: 3, inject: big.start, windows: []faultWindow{
		{"mid-reply", 1500 * time.Millisecond, broken(3)},
	}, cure: big.halt, cureCause: broken(3)}, maxLat)...)
	l.Halt()
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
	f      *proxytest.Fixture
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

func newBigReader(t *testing.T, f *proxytest.Fixture, shard int) *bigReader {
	t.Helper()
	br := &bigReader{t: t, f: f, shard: shard, key: f.KeysOn(shard, "ftbig:", 1)[0],
		val: strings.Repeat("0123456789abcdef", 10<<20/16), stop: make(chan struct{}), errs: map[string]int{}}
	rc := proxytest.NoRetryClient(t, f.Addr, nil, 2)
	if err := rc.Set(context.Background(), br.key, br.val, 0).Err(); err != nil {
		t.Fatalf("SET 10 MB value: %v", err)
	}
	return br
}

// start begins reading and killing.
func (br *bigReader) start() {
	rc := proxytest.NoRetryClient(br.t, br.f.Addr, nil, 4)
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
			if rep, err := testservers.Do(br.f.Backends[br.shard].Addr, "CLIENT", "KILL", "TYPE", "normal"); err == nil && rep != ":0" {
				br.kills.Add(1)
			}
			// Let one read finish whole before the next kill, however
			// slow the machine (a race build, a busy CI runner) makes a
			// 10 MB read, so that the run sees both kinds.
			ok, wait := br.ok.Load(), time.Now().Add(3*time.Second)
			for br.running() && br.ok.Load() == ok && time.Now().Before(wait) {
				time.Sleep(5 * time.Millisecond)
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
		br.broken = append(br.broken, fmt.Sprintf("%q", proxytest.Short(got)))
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
	cause := proxytest.ErrorCause(br.f, br.shard, "server unavailable", "connection closed by server|read: .*connection reset|write: .*(broken pipe|connection reset)")
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
	return fmt.Sprintf("10 MB reads under CLIENT KILL (30 ms apart, each after a whole read): %d whole, %d failed with -ERR, %d kills that closed connections",
		br.ok.Load(), br.bad.Load(), br.kills.Load())
}

// TestFaultPipelineTimeout pipelines 100 GETs for a hung backend,
// interleaved with GETs for a healthy one: each hung GET gets the timeout
// error, every reply comes in request order, none is missing, all within
// the timeout, and the connection stays usable.
func TestFaultPipelineTimeout(t *testing.T) {
	proxytest.RunParallel(t)
	b := proxytest.StartRedisBackends(t, 2)
	f := proxytest.StartFixture(t, proxytest.Pool{Keys: []string{"timeout: 500"}}, b)
	hung, healthy := f.KeysOn(0, "fthung:", 100), f.KeysOn(1, "ftok:", 50)
	c := proxytest.Dial(t, f.Addr)
	var req []byte
	var want []string
	for i, k := range healthy {
		if got := c.Do("SET", k, fmt.Sprint("v", i)); got != "+OK\r\n" {
			t.Fatalf("SET %s: %q", k, got)
		}
	}
	timedOut := "-ERR timeout: " + f.Idents[0] + ": no reply within 500ms\r\n"
	for i, k := range hung {
		req, want = proxytest.EncodeCommand(req, "GET", k), append(want, timedOut)
		if i%2 == 0 {
			req, want = proxytest.EncodeCommand(req, "GET", healthy[i/2]), append(want, proxytest.Bulk(fmt.Sprint("v", i/2)))
		}
	}
	proxytest.StopServer(t, b[0])
	defer b[0].Continue()
	start := time.Now()
	c.Net.SetDeadline(start.Add(10 * time.Second))
	if _, err := c.Net.Write(req); err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		rep, err := proxytest.ReadReply(c.R)
		if err != nil {
			t.Fatalf("reply %d of %d: %v", i+1, len(want), err)
		}
		if rep.Raw != w {
			t.Fatalf("reply %d of %d: got %q, want %q", i+1, len(want), rep.Raw, w)
		}
	}
	elapsed := time.Since(start)
	t.Logf("%d replies (100 timeouts) in %v", len(want), elapsed.Round(time.Millisecond))
	if elapsed > 900*time.Millisecond {
		t.Errorf("replies took %v, want at most the 500 ms timeout and a margin", elapsed)
	}
	b[0].Continue()
	untilOK(t, c, "SET", hung[0], "after")
	if got := c.Do("GET", hung[0]); got != proxytest.Bulk("after") {
		t.Errorf("GET after the server resumed: %q", got)
	}
}

// untilOK repeats a command until it succeeds, for up to 3 s.
func untilOK(t *testing.T, c *proxytest.Conn, args ...string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		rep, err := c.TryDo(5*time.Second, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if rep.Kind != '-' {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v still fails after 3 s: %v", args, rep)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFaultMemcache kills, then hangs, one of two memcached backends: its
// keys get SERVER_ERROR naming server and cause, a multi-key get touching
// it fails whole, the other server's keys are unaffected, and it is served
// again once it is back.
func TestFaultMemcache(t *testing.T) {
	proxytest.RunParallel(t)
	b := proxytest.StartMemcacheBackends(t, 2)
	f := proxytest.StartFixture(t, proxytest.Pool{Memcache: true, Keys: []string{"timeout: 500"}}, b)
	k0, k1 := f.KeysOn(0, "ftmc:", 1)[0], f.KeysOn(1, "ftmc:", 1)[0]
	c := proxytest.Dial(t, f.Addr)
	expect := func(req, want string) {
		t.Helper()
		if got := c.RoundTrip(req); got != want {
			t.Errorf("%q: got %q, want %q", req, got, want)
		}
	}
	expectPrefix := func(req, prefix string) {
		t.Helper()
		if got := c.RoundTrip(req); !strings.HasPrefix(got, prefix) {
			t.Errorf("%q: got %q, want %q...", req, got, prefix)
		}
	}
	// untilStored repeats a storage request until it is stored, for up
	// to 3 s.
	untilStored := func(req string) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for got := c.RoundTrip(req); got != "STORED\r\n"; got = c.RoundTrip(req) {
			if time.Now().After(deadline) {
				t.Fatalf("%q: still %q after 3 s", req, got)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	expect("set "+k1+" 0 0 2\r\nv1\r\n", "STORED\r\n")
	down := "SERVER_ERROR server unavailable: " + f.Idents[0] + ": "
	hung := "SERVER_ERROR timeout: " + f.Idents[0] + ": no reply within 500ms\r\n"
	b[0].Kill()
	expectPrefix("get "+k0+"\r\n", down)
	expect("get "+k1+"\r\n", "VALUE "+k1+" 0 2\r\nv1\r\nEND\r\n")
	expectPrefix("get "+k1+" "+k0+"\r\n", down)
	b[0].Restart()
	untilStored("set " + k0 + " 0 0 2\r\nv0\r\n")
	expect("get "+k1+" "+k0+"\r\n", "VALUE "+k1+" 0 2\r\nv1\r\nVALUE "+k0+" 0 2\r\nv0\r\nEND\r\n")
	proxytest.StopServer(t, b[0])
	start := time.Now()
	expect("get "+k0+"\r\n", hung)
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("timeout reply after %v", d)
	}
	expect("get "+k1+"\r\n", "VALUE "+k1+" 0 2\r\nv1\r\nEND\r\n")
	b[0].Continue()
	untilStored("set " + k0 + " 0 0 2\r\nv2\r\n")
}
