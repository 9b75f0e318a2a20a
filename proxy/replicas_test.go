package proxy_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/proxy"
)

// populated is how many keys the primaries of the replica tests hold
// (DEBUG POPULATE: key:N holds value:N).
const populated = 100_000

// replicaShard starts a primary holding populated keys, one replica of
// it (with extra arguments), a Sentinel watching them, and a proxy with
// replica_reads over the shard; it returns once the proxy reads from the
// replica.
func replicaShard(t *testing.T, extra ...string) (primary, replica *testservers.Server, px *proxy.Proxy, listen string) {
	t.Helper()
	primary = testservers.Redis(t, "--enable-debug-command", "local")
	if r, err := testservers.Do(primary.Addr, "DEBUG", "POPULATE", fmt.Sprint(populated)); err != nil || r != "+OK" {
		t.Fatalf("DEBUG POPULATE: %q %v", r, err)
	}
	replica = testservers.RedisReplica(t, primary, extra...)
	sents := testservers.Sentinels(t, 1, map[string]string{"shard1": primary.Addr}, testservers.SentinelOptions{})
	listen = proxytest.FreeListen(t)
	// A timeout far above any reply's time, even on a loaded machine:
	// these tests count refusals, not slow replies.
	yaml := proxytest.Pool{Servers: []string{primary.Addr + ":1 shard1"}, Keys: []string{
		"sentinels: [" + sents[0].Addr + "]", "timeout: 5000", "replica_reads: true"}}.YAML("alpha", listen)
	px = proxytest.StartProxyOpts(t, yaml, proxy.Options{StatsAddr: "127.0.0.1:0"})
	waitReplicaListed(t, px, replica.Addr, 15*time.Second)
	return primary, replica, px, listen
}

// waitReplicaListed waits until the stats list addr as a replica of
// shard1 that reads go to.
func waitReplicaListed(t *testing.T, px *proxy.Proxy, addr string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		list, _ := serverStat(t, px, "shard1", "replicas").([]any)
		if slices.Contains(list, any(addr)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats: replicas %v after %v, want %s", list, d, addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readLoad is clients reading populated keys through the proxy (GET and
// MGET), counting the replies that are not the keys' values.
type readLoad struct {
	start           time.Time
	stop            chan struct{}
	wg              sync.WaitGroup
	reads, failures atomic.Int64
	mu              sync.Mutex
	samples         map[string]int // failure replies, by their first 60 bytes
	firstFailure    time.Duration  // since start
}

// startReads starts n clients, each sending pipelines of 8 reads.
func startReads(t *testing.T, addr string, n int) *readLoad {
	l := &readLoad{start: time.Now(), stop: make(chan struct{}), samples: map[string]int{}}
	for range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.client(addr)
		}()
	}
	t.Cleanup(l.halt)
	return l
}

func (l *readLoad) client(addr string) {
	var nc net.Conn
	var r *bufio.Reader
	defer func() {
		if nc != nil {
			nc.Close()
		}
	}()
	for {
		select {
		case <-l.stop:
			return
		default:
		}
		if nc == nil {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				l.fail("dial: " + err.Error())
				time.Sleep(10 * time.Millisecond)
				continue
			}
			nc, r = c, bufio.NewReader(c)
		}
		// Seven GETs and an MGET of two keys.
		var req []byte
		var want []string
		for range 7 {
			k := rand.IntN(populated)
			want = append(want, proxytest.Bulk(fmt.Sprintf("value:%d", k)))
			req = proxytest.EncodeCommand(req, "GET", fmt.Sprintf("key:%d", k))
		}
		a, b := rand.IntN(populated), rand.IntN(populated)
		want = append(want, "*2\r\n"+proxytest.Bulk(fmt.Sprintf("value:%d", a))+proxytest.Bulk(fmt.Sprintf("value:%d", b)))
		req = proxytest.EncodeCommand(req, "MGET", fmt.Sprintf("key:%d", a), fmt.Sprintf("key:%d", b))
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := nc.Write(req); err != nil {
			l.fail("write: " + err.Error())
			nc.Close()
			nc = nil
			continue
		}
		for _, w := range want {
			rep, err := proxytest.ReadReply(r)
			if err != nil {
				l.fail("read: " + err.Error())
				nc.Close()
				nc = nil
				break
			}
			l.reads.Add(1)
			if rep.Raw != w {
				l.fail(rep.Raw)
			}
		}
	}
}

func (l *readLoad) fail(what string) {
	l.failures.Add(1)
	l.mu.Lock()
	if l.firstFailure == 0 {
		l.firstFailure = time.Since(l.start)
	}
	l.samples[strings.TrimSpace(what[:min(len(what), 60)])]++
	l.mu.Unlock()
}

// halt stops the clients (again: a no-op).
func (l *readLoad) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

func (l *readLoad) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("%d of %d reads failed %v (the first %v after the reads began)", l.failures.Load(), l.reads.Load(),
		l.samples, l.firstFailure.Round(time.Millisecond))
}

// rejectedCalls returns how many times server s refused cmd (lower case),
// from its INFO commandstats.
func rejectedCalls(t *testing.T, s *testservers.Server, cmd string) int {
	t.Helper()
	info, err := testservers.Do(s.Addr, "INFO", "commandstats")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(info, "cmdstat_"+cmd+":")
	if !ok {
		return 0
	}
	_, rest, ok = strings.Cut(rest, "rejected_calls=")
	if !ok {
		t.Fatalf("no rejected_calls in INFO commandstats of %s", s.Addr)
	}
	n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
	return n
}

// TestReplicaReadsLoading: the replica of a shard whose primary holds
// 100,000 keys is restarted and loads its RDB for seconds (slowed by
// key-load-delay), answering -LOADING, while clients read through the
// proxy with replica_reads: no read fails (a loading replica gets no
// reads, and one it refuses or drops is sent to the primary), and once it
// has loaded and replicates again it serves reads again.
func TestReplicaReadsLoading(t *testing.T) {
	primary, replica, px, listen := replicaShard(t)
	if r, err := testservers.Do(replica.Addr, "SAVE"); err != nil || r != "+OK" {
		t.Fatalf("SAVE on the replica: %q %v", r, err)
	}
	load := startReads(t, listen, 4)
	for deadline := time.Now().Add(5 * time.Second); load.reads.Load() < 2000 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	replicaGets := proxytest.CommandCalls(t, replica, "get")
	before := load.reads.Load()
	restarted := time.Now()
	replica.RestartWith("--key-load-delay", "-3", "--loading-process-events-interval-bytes", "1024")
	// The replica refuses reads until it has loaded and its link to the
	// primary is up.
	loadingSeen := false
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r, _ := testservers.Do(replica.Addr, "GET", "key:1")
		if strings.HasPrefix(r, "-LOADING") {
			loadingSeen = true
		}
		info, _ := testservers.Do(replica.Addr, "INFO", "replication")
		if r == "value:1" && strings.Contains(info, "master_link_status:up") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica has not loaded after 30 s: GET %q", r)
		}
	}
	refusing := time.Since(restarted)
	during := load.reads.Load() - before
	t.Logf("the replica refused reads for %v (-LOADING seen: %v); %d reads through the proxy meanwhile",
		refusing.Round(time.Millisecond), loadingSeen, during)
	if !loadingSeen || during < 100 {
		t.Fatalf("the test did not test: -LOADING seen %v, %d reads while the replica loaded", loadingSeen, during)
	}
	// Back to the replica once it serves.
	loaded := proxytest.CommandCalls(t, replica, "get") // the test's own GETs
	waitReplicaListed(t, px, replica.Addr, 10*time.Second)
	for deadline := time.Now().Add(10 * time.Second); proxytest.CommandCalls(t, replica, "get") <= loaded; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no GET reached the replica in 10 s after it loaded")
		}
	}
	load.halt()
	t.Logf("%s; the replica ran %d GETs before its restart, the primary %d GETs in all",
		load.summary(), replicaGets, proxytest.CommandCalls(t, primary, "get"))
	if n := load.failures.Load(); n > 0 {
		t.Errorf("%d reads failed through the proxy while the replica restarted and loaded", n)
	}
}

// TestReplicaReadsMasterDown: a replica with replica-serve-stale-data no
// whose link to its primary goes down (a wrong masterauth, its master
// connection killed) answers -MASTERDOWN: reads through the proxy never
// see it, the replica gets no reads while its link is down, and it gets
// them again once the link is back.
func TestReplicaReadsMasterDown(t *testing.T) {
	_, replica, px, listen := replicaShard(t, "--replica-serve-stale-data", "no")
	load := startReads(t, listen, 4)
	for deadline := time.Now().Add(5 * time.Second); load.reads.Load() < 2000 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	for _, cmd := range [][]string{{"CONFIG", "SET", "masterauth", "wrong"}, {"CLIENT", "KILL", "TYPE", "master"}} {
		if r, err := testservers.Do(replica.Addr, cmd...); err != nil || strings.HasPrefix(r, "-") {
			t.Fatalf("%v on the replica: %q %v", cmd, r, err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r, _ := testservers.Do(replica.Addr, "GET", "key:1")
		if strings.HasPrefix(r, "-MASTERDOWN") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica does not answer -MASTERDOWN: %q", r)
		}
	}
	before := load.reads.Load()
	time.Sleep(3 * time.Second)
	during := load.reads.Load() - before
	refusedDown := rejectedCalls(t, replica, "get") + rejectedCalls(t, replica, "mget")
	time.Sleep(time.Second)
	refusedLater := rejectedCalls(t, replica, "get") + rejectedCalls(t, replica, "mget")
	getsLater := proxytest.CommandCalls(t, replica, "get")
	if r, err := testservers.Do(replica.Addr, "CONFIG", "SET", "masterauth", ""); err != nil || r != "+OK" {
		t.Fatalf("masterauth back: %q %v", r, err)
	}
	waitReplicaListed(t, px, replica.Addr, 15*time.Second)
	for deadline := time.Now().Add(10 * time.Second); proxytest.CommandCalls(t, replica, "get") == getsLater; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no GET reached the replica in 10 s after its link came back")
		}
	}
	load.halt()
	t.Logf("%s; %d reads through the proxy in 3 s of -MASTERDOWN; the replica refused %d reads in the second after",
		load.summary(), during, refusedLater-refusedDown)
	if during < 100 {
		t.Fatalf("the test did not test: %d reads while the replica's link was down", during)
	}
	if n := load.failures.Load(); n > 0 {
		t.Errorf("%d reads failed through the proxy while the replica's link was down", n)
	}
	if refusedLater > refusedDown {
		t.Errorf("the replica was sent %d reads while its link was down, seconds after its first -MASTERDOWN", refusedLater-refusedDown)
	}
}

// TestReplicaReadsDetached: a replica detached by hand (REPLICAOF NO ONE)
// stops getting reads within seconds (ROLE says master: it is not the
// shard's replica any more), so a value written through the proxy after
// that is what reads return, not the replica's old one.
func TestReplicaReadsDetached(t *testing.T) {
	_, replica, px, listen := replicaShard(t)
	c := proxytest.Dial(t, listen)
	if r := c.Do("SET", "key:1", "old"); r != "+OK\r\n" {
		t.Fatalf("SET: %q", r)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if r, _ := testservers.Do(replica.Addr, "GET", "key:1"); r == "old" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the write did not reach the replica")
		}
	}
	if r, err := testservers.Do(replica.Addr, "REPLICAOF", "NO", "ONE"); err != nil || r != "+OK" {
		t.Fatalf("REPLICAOF NO ONE: %q %v", r, err)
	}
	detached := time.Now()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		list, _ := serverStat(t, px, "shard1", "replicas").([]any)
		if len(list) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats: replicas %v 5 s after the replica was detached, want none", list)
		}
	}
	t.Logf("the detached replica got no reads any more %v after REPLICAOF NO ONE", time.Since(detached).Round(time.Millisecond))
	if r := c.Do("SET", "key:1", "new"); r != "+OK\r\n" {
		t.Fatalf("SET: %q", r)
	}
	stale := 0
	for range 100 {
		if r := c.Do("GET", "key:1"); r != proxytest.Bulk("new") {
			stale++
		}
	}
	if stale > 0 {
		t.Errorf("%d of 100 GETs after the write returned another value than it", stale)
	}
}
