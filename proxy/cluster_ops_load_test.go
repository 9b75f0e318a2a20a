//go:build linux

package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/proxy"
	"github.com/shardproxy/shardproxy/stats"
)

// The checking load of the cluster operations tests (cluster_ops_test.go),
// and the helpers they share.

// Shape of the load's key space.
const (
	opsCounters  = 64  // INCR counters shared by every client
	opsRYWKeys   = 256 // read-your-writes keys per client
	opsPairs     = 4   // SET/GET pairs per batch
	opsIncrs     = 5   // INCRs per batch
	opsMultiKeys = 3   // keys of a client's MSET/MGET, in different slots
)

// opsLoad is clients pipelining through a cluster pool, each batch of 17
// requests: SET then GET of its own keys (the GET must return the value
// just set: read-your-writes), INCRs of counters every client shares
// (each answered INCR counted, to check the counters' final values), an
// MSET then MGET of keys in several slots, and the same of keys in one
// slot (the MGETs must return the MSETs' values). Every error reply and every wrong value is recorded.
type opsLoad struct {
	addr string
	stop chan struct{}
	wg   sync.WaitGroup

	batches, requests atomic.Int64
	// incrs[i] counts the INCRs of counter i answered with a number,
	// maybe[i] those answered with an error (they may have run).
	incrs, maybe [opsCounters]atomic.Int64
	maxBatch     atomic.Int64 // the slowest batch, in nanoseconds

	keys []opsKeys // by client

	mu         sync.Mutex
	errs       map[string]int // error reply or failure -> count
	wrong      []string       // replies that are not what the request must get
	errKey     map[string]int // the keys of a request answered an error, joined by spaces -> count
	clientErrs []int          // by client
}

// startOpsLoad starts n clients of addr; the test's cleanup stops them.
func startOpsLoad(t *testing.T, addr string, n int) *opsLoad {
	return startOpsLoadAvoiding(t, addr, n, 0, nil)
}

// startOpsLoadAvoiding starts n clients of addr, the last m of them
// using only keys for which avoid is false; the test's cleanup stops
// them.
func startOpsLoadAvoiding(t *testing.T, addr string, n, m int, avoid func(key string) bool) *opsLoad {
	l := &opsLoad{addr: addr, stop: make(chan struct{}), errs: map[string]int{}, errKey: map[string]int{},
		clientErrs: make([]int, n)}
	for g := range n {
		var skip func(string) bool
		if g >= n-m {
			skip = avoid
		}
		l.keys = append(l.keys, newOpsKeys(g, skip))
	}
	for g := range n {
		l.wg.Add(1)
		go l.run(g)
	}
	t.Cleanup(l.halt)
	// Every client has had some batches answered before the operation
	// under test begins.
	deadline := time.Now().Add(10 * time.Second)
	for l.batches.Load() < int64(4*n) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	return l
}

// opsKeys are the keys of one client of an opsLoad.
type opsKeys struct {
	ryw      []string // its own, for read-your-writes
	counters []int    // the shared counters it increments
	multi    []string // its own, for MSET and MGET, in different slots
	tagged   []string // its own, for MSET and MGET, in one slot (a hash tag)
}

// newOpsKeys makes client g's keys, leaving out those skip says (nil:
// none).
func newOpsKeys(g int, skip func(string) bool) opsKeys {
	var k opsKeys
	keep := func(key string) bool { return skip == nil || !skip(key) }
	for i := 0; len(k.ryw) < opsRYWKeys; i++ {
		if key := fmt.Sprintf("ops:ryw:%d:%d", g, i); keep(key) {
			k.ryw = append(k.ryw, key)
		}
	}
	for i := range opsCounters {
		if keep(opsCounter(i)) {
			k.counters = append(k.counters, i)
		}
	}
	for i := 0; len(k.multi) < opsMultiKeys; i++ {
		if key := fmt.Sprintf("ops:multi:%d:%d", g, i); keep(key) {
			k.multi = append(k.multi, key)
		}
	}
	// A tag of a low slot if one is kept: the reshards of these tests
	// move low slots first, and a multi-key request in a slot whose keys
	// are half moved is answered TRYAGAIN.
	tag := ""
	for i := 0; tag == "" || i < 20000 && hashringSlot(tag) >= opsLowSlots; i++ {
		if t := fmt.Sprintf("{ops:tag:%d:%d}", g, i); keep(t) && (tag == "" || hashringSlot(t) < opsLowSlots) {
			tag = t
		}
	}
	for i := range opsMultiKeys {
		k.tagged = append(k.tagged, fmt.Sprintf("%s:%d", tag, i))
	}
	return k
}

// opsLowSlots bounds the slots of the clients' hash tags.
const opsLowSlots = 600

// halt stops the clients and waits for them.
func (l *opsLoad) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

func opsCounter(i int) string { return fmt.Sprintf("ops:ctr:%d", i) }

func (l *opsLoad) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// opsRequest is one request of a batch and what checks its reply.
type opsRequest struct {
	keys  []string
	check func(rep proxytest.Reply) string
	// after is the index of a request whose error excuses this one's
	// value (the SET before a GET, the MSET before an MGET): a write that
	// may or may not have run leaves either value.
	after int
	incr  int // the counter of an INCR, or -1
}

// run is one client: batches until stop, on one connection, dialled
// again when it breaks.
func (l *opsLoad) run(g int) {
	defer l.wg.Done()
	var nc net.Conn
	var r *bufio.Reader
	defer func() {
		if nc != nil {
			nc.Close()
		}
	}()
	var buf []byte
	var reqs []opsRequest
	for seq := 0; !l.stopped(); seq++ {
		if nc == nil {
			var err error
			if nc, err = net.DialTimeout("tcp", l.addr, 5*time.Second); err != nil {
				l.fail(g, "dial: "+err.Error(), nil)
				nc = nil
				time.Sleep(50 * time.Millisecond)
				continue
			}
			r = bufio.NewReader(nc)
		}
		buf, reqs = l.batch(g, seq, buf[:0], reqs[:0])
		start := time.Now()
		nc.SetDeadline(start.Add(20 * time.Second))
		if _, err := nc.Write(buf); err != nil {
			l.fail(g, "write: "+err.Error(), nil)
			nc.Close()
			nc = nil
			continue
		}
		failed := make([]bool, len(reqs))
		for i, q := range reqs {
			rep, err := proxytest.ReadReply(r)
			if err != nil {
				l.fail(g, "read: "+err.Error(), q.keys)
				nc.Close()
				nc = nil
				break
			}
			if rep.Kind == '-' {
				failed[i] = true
				l.fail(g, rep.Str, q.keys)
				if q.incr >= 0 {
					l.maybe[q.incr].Add(1)
				}
				continue
			}
			if q.incr >= 0 && rep.Kind == ':' {
				l.incrs[q.incr].Add(1)
			}
			if why := q.check(rep); why != "" && (q.after < 0 || !failed[q.after]) {
				l.mu.Lock()
				l.wrong = append(l.wrong, fmt.Sprintf("client %d %v: %s", g, q.keys, why))
				l.mu.Unlock()
			}
		}
		if nc == nil {
			continue
		}
		if d := int64(time.Since(start)); d > l.maxBatch.Load() {
			l.maxBatch.Store(d)
		}
		l.batches.Add(1)
		l.requests.Add(int64(len(reqs)))
	}
}

// batch appends one batch of client g to buf and its requests to reqs.
func (l *opsLoad) batch(g, seq int, buf []byte, reqs []opsRequest) ([]byte, []opsRequest) {
	k := &l.keys[g]
	for j := range opsPairs {
		key := k.ryw[(seq*opsPairs+j)%len(k.ryw)]
		v := fmt.Sprintf("%d:%d:%d", g, seq, j)
		buf = proxytest.EncodeCommand(buf, "SET", key, v)
		reqs = append(reqs, opsRequest{keys: []string{key}, check: wantSimple("OK"), after: -1, incr: -1})
		buf = proxytest.EncodeCommand(buf, "GET", key)
		reqs = append(reqs, opsRequest{keys: []string{key}, check: wantBulk(v), after: len(reqs) - 1, incr: -1})
	}
	for j := range opsIncrs {
		c := k.counters[(seq*7+g*13+j*17)%len(k.counters)]
		buf = proxytest.EncodeCommand(buf, "INCR", opsCounter(c))
		reqs = append(reqs, opsRequest{keys: []string{opsCounter(c)}, check: wantPositive, after: -1, incr: c})
	}
	v := fmt.Sprintf("m%d:%d", g, seq)
	mset, mget := []string{"MSET"}, []string{"MGET"}
	for _, key := range k.multi {
		mset = append(mset, key, v)
		mget = append(mget, key)
	}
	buf = proxytest.EncodeCommand(buf, mset...)
	reqs = append(reqs, opsRequest{keys: k.multi, check: wantSimple("OK"), after: -1, incr: -1})
	buf = proxytest.EncodeCommand(buf, mget...)
	reqs = append(reqs, opsRequest{keys: k.multi, check: wantAll(v, len(k.multi)), after: len(reqs) - 1, incr: -1})
	mset, mget = []string{"MSET"}, []string{"MGET"}
	for _, key := range k.tagged {
		mset = append(mset, key, v)
		mget = append(mget, key)
	}
	buf = proxytest.EncodeCommand(buf, mset...)
	reqs = append(reqs, opsRequest{keys: k.tagged, check: wantSimple("OK"), after: -1, incr: -1})
	buf = proxytest.EncodeCommand(buf, mget...)
	reqs = append(reqs, opsRequest{keys: k.tagged, check: wantAll(v, len(k.tagged)), after: len(reqs) - 1, incr: -1})
	return buf, reqs
}

func wantSimple(s string) func(proxytest.Reply) string {
	return func(rep proxytest.Reply) string {
		if rep.Kind != '+' || rep.Str != s {
			return fmt.Sprintf("got %q, want +%s", rep.Raw, s)
		}
		return ""
	}
}

func wantBulk(v string) func(proxytest.Reply) string {
	return func(rep proxytest.Reply) string {
		if rep.Kind != '$' || rep.Null || rep.Str != v {
			return fmt.Sprintf("got %q, want %q", rep.Raw, v)
		}
		return ""
	}
}

func wantPositive(rep proxytest.Reply) string {
	if rep.Kind != ':' || rep.Num < 1 {
		return fmt.Sprintf("got %q, want a count", rep.Raw)
	}
	return ""
}

func wantAll(v string, n int) func(proxytest.Reply) string {
	return func(rep proxytest.Reply) string {
		ok := rep.Kind == '*' && len(rep.Elems) == n
		for _, e := range rep.Elems {
			ok = ok && e.Kind == '$' && e.Str == v
		}
		if !ok {
			return fmt.Sprintf("got %s, want %d times %q", rep, n, v)
		}
		return ""
	}
}

// fail records an error reply or a failure of client g's request on
// keys.
func (l *opsLoad) fail(g int, what string, keys []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(what) > 160 {
		what = what[:160]
	}
	l.errs[what]++
	l.clientErrs[g]++
	if len(keys) > 0 {
		l.errKey[strings.Join(keys, " ")]++
	}
}

// errorCount is how many requests failed.
func (l *opsLoad) errorCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.errs {
		n += c
	}
	return n
}

// summary describes the load's figures.
func (l *opsLoad) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "%d batches, %d requests, slowest batch %v", l.batches.Load(), l.requests.Load(),
		time.Duration(l.maxBatch.Load()).Round(time.Millisecond))
	var errs []string
	for e, n := range l.errs {
		errs = append(errs, fmt.Sprintf("%dx %q", n, e))
	}
	sort.Strings(errs)
	if len(errs) > 0 {
		fmt.Fprintf(&b, "; errors: %s", strings.Join(errs, ", "))
	}
	return b.String()
}

// checkClean fails the test on any error, any wrong reply, and any
// counter whose value is not the number of INCRs answered.
func (l *opsLoad) checkClean(t *testing.T) {
	t.Helper()
	l.halt()
	if n := l.errorCount(); n > 0 {
		t.Errorf("%d requests failed: %s", n, l.summary())
	}
	l.checkWrong(t)
	l.checkCounters(t, nil)
}

// checkWrong fails the test on any wrong reply.
func (l *opsLoad) checkWrong(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, w := range l.wrong {
		if i == 10 {
			t.Errorf("... and %d more wrong replies", len(l.wrong)-10)
			break
		}
		t.Errorf("wrong reply: %s", w)
	}
}

// checkCounters reads every counter through the proxy, and fails the test
// when one is not the number of its INCRs answered; skip says which
// counters are only reported (those of a primary that died: a write it
// answered may not have reached its replica).
func (l *opsLoad) checkCounters(t *testing.T, skip func(key string) bool) (lost int64) {
	t.Helper()
	var gets [][]string
	for i := range opsCounters {
		gets = append(gets, []string{"GET", opsCounter(i)})
	}
	for i, rep := range proxytest.Texts(t, l.addr, gets) {
		got, err := strconv.ParseInt(rep, 10, 64)
		if rep == "(nil)" {
			got, err = 0, nil
		}
		answered, maybe := l.incrs[i].Load(), l.maybe[i].Load()
		switch {
		case err != nil:
			t.Errorf("counter %d: %q", i, rep)
		case skip != nil && skip(opsCounter(i)):
			if got < answered {
				lost += answered - got
			}
			if got > answered+maybe {
				t.Errorf("counter %d of the dead primary: %d, more than %d INCRs answered and %d failed", i, got, answered, maybe)
			}
		case got < answered || got > answered+maybe:
			t.Errorf("counter %d: %d, want %d INCRs answered (and up to %d that failed)", i, got, answered, maybe)
		case maybe == 0 && got != answered:
			t.Errorf("counter %d: %d, want %d", i, got, answered)
		}
	}
	return lost
}

// redisCLI runs redis-cli with args and fails the test when it fails.
func redisCLI(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, testservers.Need(t, "redis-cli"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// slotCounts returns how many slots each primary of c owns (by its id),
// as CLUSTER SLOTS of node says.
func slotCounts(t *testing.T, c *testservers.Cluster) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, p := range c.Primaries() {
		for _, r := range c.Slots(p) {
			out[p.ID] += r[1] - r[0] + 1
		}
	}
	return out
}

// fill writes n keys of filler through addr, so that moving a slot moves
// keys and takes time (ASK is answered only while a slot's keys move).
func fill(t *testing.T, addr string, n int) {
	t.Helper()
	for from := 0; from < n; from += 5000 {
		var cmds [][]string
		for i := from; i < min(n, from+5000); i++ {
			cmds = append(cmds, []string{"SET", fmt.Sprintf("ops:fill:%d", i), "x"})
		}
		for i, rep := range proxytest.Texts(t, addr, cmds) {
			if rep != "+OK" {
				t.Fatalf("%v: %q", cmds[i], rep)
			}
		}
	}
}

// clusterStats is the pool's cluster counters.
func clusterStats(px *proxy.Proxy) *stats.Cluster {
	return px.Snapshot().Pools[0].Cluster
}

func redirectSummary(cs *stats.Cluster) string {
	return fmt.Sprintf("MOVED %d, ASK %d, TRYAGAIN %d, CLUSTERDOWN %d, unsent retried %d, retries exhausted %d, refreshes %d (%d failed, %d stale), nodes %d",
		cs.Moved, cs.Ask, cs.TryAgain, cs.ClusterDown, cs.UnsentRetries, cs.RetriesExhausted, cs.Refreshes,
		cs.RefreshFailures, cs.StaleViews, cs.Nodes)
}
