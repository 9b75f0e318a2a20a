package proxy_test

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/hashring"
	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/proxy"
)

// bigKeySize is the size of the big value: large enough that its move,
// sent from the proxy, takes over the pool's timeout of 400 ms here (the
// value sent, then about 230 ms of RESTORE on the new owner).
const bigKeySize = 150_000_000

// TestReshardBigKeyThroughProxy grows a pool with timeout: 400 whose first
// server cannot MIGRATE and holds a 150 MB string: the string moves through
// the proxy (DUMP, RESTORE, DEL), moved by the mover or by a client's
// access, while a client reads an unrelated key of the new owner in a loop
// (which moves from the other old owner, with MIGRATE). None of those reads
// fails (the move runs on connections of its own, without the pool's
// timeout, and closes none of the clients'), except one the new owner
// itself did not answer in time: its RESTORE of the value blocks it, and on
// a loaded machine for longer than the timeout, which a direct PING shows.
// The migration completes, and the string ends on its new owner only, with
// its value (length and digest compared by the servers).
func TestReshardBigKeyThroughProxy(t *testing.T) {
	for _, by := range []string{"mover", "access"} {
		t.Run(by, func(t *testing.T) { testBigKeyThroughProxy(t, by == "access") })
	}
}

func testBigKeyThroughProxy(t *testing.T, onAccess bool) {
	debug := []string{"--enable-debug-command", "yes"}
	b := []*testservers.Server{
		testservers.Redis(t, append(debug, "--rename-command", "MIGRATE", "", "--rdbcompression", "no")...),
		testservers.Redis(t, debug...), testservers.Redis(t, debug...)}
	lines := proxytest.ServerLines(b, nil, nil)
	ketama := hashring.Config{Hash: "fnv1a_64", Distribution: "ketama"}
	oldPlace, newPlace := placer(t, ketama, lines[:2]), placer(t, ketama, lines)
	big, other := keyMoving(oldPlace, newPlace, 0, 2), keyMoving(oldPlace, newPlace, 1, 2)
	digest := fillBig(t, b[0].Addr, big)
	if got, err := testservers.Do(b[1].Addr, "SET", other, "v"); err != nil || got != "+OK" {
		t.Fatalf("SET %s: %q, %v", other, got, err)
	}
	listen := proxytest.FreeListen(t)
	keys := []string{"timeout: 400"}
	px := proxytest.StartProxyOpts(t, proxytest.Pool{Servers: lines[:2], Keys: keys}.YAML("alpha", listen), proxy.Options{StatsAddr: "127.0.0.1:0"})
	from := "servers: " + flowList(lines[:2])
	if onAccess {
		// The mover scans 2 s after start_at: the client's access moves it.
		start := time.Now().Add(1500 * time.Millisecond).Truncate(time.Second).Add(time.Second)
		from += ", start_at: " + start.UTC().Format(time.RFC3339)
	}
	grown := append(keys, "migrate_rate: 1000000", "migrate_from: {"+from+"}")
	reader := startReading(t, listen, other)
	stalls := serverStalls(t, b[2].Addr)
	peak := watchHeap()
	began := time.Now()
	applyYAML(t, px, proxytest.Pool{Servers: lines, Keys: grown}.YAML("alpha", listen))
	if onAccess {
		for proxytest.PoolStat(t, px, "migration_started") == 0 {
			time.Sleep(10 * time.Millisecond)
		}
		accessBig(t, listen, big)
	}
	deadline := time.Now().Add(30 * time.Second)
	for proxytest.PoolStat(t, px, "migration_pending") != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(began)
	time.Sleep(300 * time.Millisecond)
	reads, failed := reader.halt()
	stalled := stalls()
	heap := peak()
	t.Logf("migration took %v; %d GETs of %s on the new owner, %d failed; the new owner stalled %d times; %d migration errors; peak live heap %d MB",
		took.Round(time.Millisecond), reads, other, len(failed), len(stalled), proxytest.PoolStat(t, px, "migration_errors"), heap>>20)
	for _, w := range failed {
		t.Logf("GET %s failed after %v: %q", other, w.done.Sub(w.sent).Round(time.Millisecond), w.got)
	}
	for _, w := range stalled {
		t.Logf("the new owner answered a PING sent %v after the grow in %v", w.sent.Sub(began).Round(time.Millisecond), w.done.Sub(w.sent).Round(time.Millisecond))
	}
	if n := proxytest.PoolStat(t, px, "migration_pending"); n != 0 {
		t.Errorf("migration_pending %d after 30 s", n)
	}
	if left := unexcused(failed, stalled); len(left) != 0 && !raceDetector {
		t.Errorf("%d of %d GETs of a key of the new owner failed while the big key moved, and the server was not stalled for them (first: %q)", len(left), reads, left[0].got)
	}
	if got, _ := testservers.Do(b[0].Addr, "EXISTS", big); got != ":0" {
		t.Errorf("EXISTS %s on its old owner: %q, want :0", big, got)
	}
	if got := proxytest.Pipeline(t, b[2].Addr, [][]string{{"STRLEN", big}, {"DEBUG", "DIGEST-VALUE", big}}); got[0] != fmt.Sprintf(":%d\r\n", bigKeySize) || got[1] != digest {
		t.Errorf("%s on its new owner: STRLEN %q, digest %q; want :%d, %q", big, got[0], got[1], bigKeySize, digest)
	}
	if heap > 3*bigKeySize/2 {
		t.Errorf("peak live heap %d MB moving a value of %d MB", heap>>20, bigKeySize>>20)
	}
}

// keyMoving returns a key that the placement old puts on server from and
// the placement new on server to.
func keyMoving(old, new func(string) int, from, to int) string {
	for i := 0; ; i++ {
		k := "big:" + strconv.Itoa(i)
		if old(k) == from && new(k) == to {
			return k
		}
	}
}

// fillBig writes a bigKeySize string at key on addr, with marks along it,
// and returns the server's digest of it (DEBUG DIGEST-VALUE's reply).
func fillBig(t *testing.T, addr, key string) string {
	t.Helper()
	cmds := [][]string{{"SETRANGE", key, strconv.Itoa(bigKeySize - 1), "x"}}
	for off := 0; off < bigKeySize; off += bigKeySize / 64 {
		cmds = append(cmds, []string{"SETRANGE", key, strconv.Itoa(off), "mark " + strconv.Itoa(off)})
	}
	cmds = append(cmds, []string{"DEBUG", "DIGEST-VALUE", key})
	replies := proxytest.Pipeline(t, addr, cmds)
	return replies[len(replies)-1]
}

// accessBig sends STRLEN of the big key through the proxy once the
// migration has started (the pool routes by the new placement), until it
// is answered with the length: it moves the key on access.
func accessBig(t *testing.T, listen, key string) {
	t.Helper()
	c := proxytest.Dial(t, listen)
	deadline := time.Now().Add(30 * time.Second)
	var replies []string
	for time.Now().Before(deadline) {
		r, err := c.TryDo(10*time.Second, "STRLEN", key)
		if err != nil {
			t.Fatalf("STRLEN %s: %v", key, err)
		}
		if len(replies) == 0 || replies[len(replies)-1] != r.Raw {
			replies = append(replies, r.Raw)
		}
		if r.Raw == fmt.Sprintf(":%d\r\n", bigKeySize) {
			t.Logf("STRLEN %s through the proxy answered %q", key, replies)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("STRLEN %s answered %q, never its length", key, replies)
}

// keyReader GETs one key through the proxy in a loop and keeps the
// window of every reply that is not its value.
type keyReader struct {
	stop   chan struct{}
	wg     sync.WaitGroup
	reads  atomic.Int64
	mu     sync.Mutex
	failed []window
}

// A window is when one request was sent and when its reply came, and the
// reply if it was not the expected one.
type window struct {
	sent, done time.Time
	got        string
}

func startReading(t *testing.T, listen, key string) *keyReader {
	c := proxytest.Dial(t, listen)
	r := &keyReader{stop: make(chan struct{})}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			select {
			case <-r.stop:
				return
			default:
			}
			sent := time.Now()
			rep, err := c.TryDo(10*time.Second, "GET", key)
			r.reads.Add(1)
			got := rep.Raw
			if err != nil {
				got = err.Error()
			}
			if got != proxytest.Bulk("v") {
				r.mu.Lock()
				r.failed = append(r.failed, window{sent, time.Now(), strings.TrimSpace(got)})
				r.mu.Unlock()
				if err != nil {
					return
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return r
}

func (r *keyReader) halt() (reads int64, failed []window) {
	close(r.stop)
	r.wg.Wait()
	return r.reads.Load(), r.failed
}

// serverStalls PINGs addr directly, back to back, and keeps the window of
// every PING that took over 100 ms: when the server itself did not answer
// anyone. The returned function stops it and returns those windows.
func serverStalls(t *testing.T, addr string) func() []window {
	c := proxytest.Dial(t, addr)
	stop, done := make(chan struct{}), make(chan []window)
	go func() {
		var stalls []window
		for {
			select {
			case <-stop:
				done <- stalls
				return
			default:
			}
			sent := time.Now()
			if _, err := c.TryDo(10*time.Second, "PING"); err != nil {
				t.Errorf("PING %s: %v", addr, err)
				<-stop
				done <- stalls
				return
			}
			if took := time.Since(sent); took > 100*time.Millisecond {
				stalls = append(stalls, window{sent: sent, done: sent.Add(took)})
			}
		}
	}()
	return func() []window { close(stop); return <-done }
}

// unexcused returns the failed requests that the server's own stalls do
// not account for. A request is excused when the server was stalled for the
// whole time the proxy waited for it: a direct PING sent within 20 ms of
// the request (the proxy forwards within a millisecond) was answered only
// within 20 ms of the request's failure, or after it. A proxy that queued the request behind the
// big value's transfer would fail it while the server still answered
// others, and is not excused.
func unexcused(failed, stalls []window) []window {
	var left []window
	for _, f := range failed {
		excused := false
		for _, s := range stalls {
			if !s.sent.After(f.sent.Add(20*time.Millisecond)) && !s.done.Before(f.done.Add(-20*time.Millisecond)) {
				excused = true
			}
		}
		if !excused {
			left = append(left, f)
		}
	}
	return left
}

// watchHeap samples the live heap (after a collection) until the returned function is
// called, which returns the largest sample.
func watchHeap() func() uint64 {
	stop, done := make(chan struct{}), make(chan uint64)
	go func() {
		var peak uint64
		for {
			peak = max(peak, liveHeap())
			select {
			case <-stop:
				done <- peak
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return func() uint64 { close(stop); return <-done }
}
