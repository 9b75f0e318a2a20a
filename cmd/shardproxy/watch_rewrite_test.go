//go:build linux

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// counterLoad runs clients doing INCR through the proxy, each on its own
// keys, and counts the replies that are not the key's previous value plus
// one: what a client sees when its keys move to another server.
type counterLoad struct {
	ops, wrong, ones atomic.Int64 // replies; wrong ones; wrong ones that were 1
	quit             chan struct{}
	wg               sync.WaitGroup
	mu               sync.Mutex
	err              error            // the first connection error
	incrs            map[string]int64 // INCRs answered per key, once stopped
}

// keysPerClient is how many counters each client of a counterLoad cycles
// through.
const keysPerClient = 200

// startCounters starts n INCR clients on addr.
func startCounters(t *testing.T, addr string, n int) *counterLoad {
	l := &counterLoad{quit: make(chan struct{}), incrs: map[string]int64{}}
	for id := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer c.Close()
			l.client(c, id)
		}()
	}
	t.Cleanup(l.stop)
	return l
}

// client does INCR on its keys in turn until quit or an error.
func (l *counterLoad) client(c net.Conn, id int) {
	r := bufio.NewReader(c)
	last := map[string]int64{} // the key's last reply
	incrs := map[string]int64{}
	defer func() {
		l.mu.Lock()
		for k, v := range incrs {
			l.incrs[k] = v
		}
		l.mu.Unlock()
	}()
	for n := 0; ; n++ {
		select {
		case <-l.quit:
			return
		default:
		}
		key := fmt.Sprintf("ctr:%d:%d", id, n%keysPerClient)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "*2\r\n$4\r\nINCR\r\n$%d\r\n%s\r\n", len(key), key)
		line, err := r.ReadString('\n')
		v, perr := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(line, ":"), "\r\n"), 10, 64)
		if err != nil || perr != nil {
			l.mu.Lock()
			if l.err == nil {
				l.err = fmt.Errorf("INCR %s: %q %v", key, line, err)
			}
			l.mu.Unlock()
			return
		}
		incrs[key]++
		if v != last[key]+1 {
			l.wrong.Add(1)
			if v == 1 {
				l.ones.Add(1)
			}
		}
		last[key] = v
		l.ops.Add(1)
	}
}

// stop ends the clients and waits for them; it may be called twice.
func (l *counterLoad) stop() {
	select {
	case <-l.quit:
	default:
		close(l.quit)
	}
	l.wg.Wait()
}

// watchPing pings addr on one connection every 20 ms until stop, and
// counts the pings that failed; the connection is not opened again, so a
// pool that closed its clients shows.
func watchPing(t *testing.T, addr string) (failed func() int64, stop func()) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			select {
			case <-quit:
				return
			case <-time.After(20 * time.Millisecond):
			}
			c.SetDeadline(time.Now().Add(3 * time.Second))
			c.Write([]byte("PING\r\n"))
			if line, err := r.ReadString('\n'); err != nil || line != "+PONG\r\n" {
				n.Add(1)
			}
		}
	}()
	stop = func() {
		select {
		case <-quit:
		default:
			close(quit)
		}
		<-done
	}
	t.Cleanup(stop)
	return n.Load, stop
}

// TestWatchConfigHalfWritten: --watch-config does not apply a file caught
// half written. The file is rewritten in place in two writes 1.5 s apart,
// the first ending at a line boundary inside alpha's server list: that
// half parses (alpha on 2 of its 3 servers, pool beta gone) and must never
// be applied. Under INCR clients on alpha, no reply is wrong, beta's
// client is never closed, exactly one reload happens, and its digest is
// the whole file's.
func TestWatchConfigHalfWritten(t *testing.T) {
	rs := []*testservers.Server{testservers.Redis(t), testservers.Redis(t), testservers.Redis(t)}
	rb := testservers.Redis(t)
	free := func() string { return fmt.Sprintf("127.0.0.1:%d", testservers.FreePort(t, "127.0.0.1")) }
	alpha, beta, gamma := free(), free(), free()
	pool := func(name, listen string, servers ...*testservers.Server) string {
		s := fmt.Sprintf("%s:\n  listen: %s\n  redis: true\n  servers:\n", name, listen)
		for i, r := range servers {
			s += fmt.Sprintf("    - %s:1 s%d\n", r.Addr, i)
		}
		return s
	}
	before := pool("alpha", alpha, rs...) + pool("beta", beta, rb)
	after := "# gamma added\n" + before + pool("gamma", gamma, rb)
	// The first write ends after alpha's second server line.
	cut := strings.Index(after, rs[1].Addr)
	cut += strings.IndexByte(after[cut:], '\n') + 1
	if half, err := config.Parse([]byte(after[:cut])); err != nil || len(half.Pools) != 1 || len(half.Pools[0].Servers) != 2 {
		t.Fatalf("the half written file should parse as alpha on 2 servers: %v", err)
	}

	conf := writeConf(t, before)
	var stderr bytes.Buffer
	p := startProxyConf(t, conf, alpha, &stderr, "--watch-config")
	betaFailed, stopBeta := watchPing(t, beta)
	ld := startCounters(t, alpha, 4)
	p.waitFor(t, "the counters running", func() bool { return ld.ops.Load() > 1000 })

	start := time.Now()
	f, err := os.OpenFile(conf, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(after[:cut]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if _, err := f.WriteString(after[cut:]); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	written := time.Since(start)
	if written >= 2*time.Second {
		// The half stood still for as long as the watcher waits:
		// applying it is then right, and this run cannot tell.
		t.Skipf("the pause between the writes took %v, longer than two polls", written)
	}
	for deadline := time.Now().Add(10 * time.Second); !ping(gamma); time.Sleep(20 * time.Millisecond) {
		p.check(t)
		if time.Now().After(deadline) {
			t.Fatal("the whole file not applied 10 s after it was written (gamma not listening)")
		}
	}
	applied := time.Since(start)
	ops := ld.ops.Load()
	p.waitFor(t, "the counters running after the reload", func() bool { return ld.ops.Load() > ops+1000 })
	ld.stop()
	stopBeta()

	doc := proxytest.FetchStats(t, p.stats)
	t.Logf("written in %v, applied %v after the first write; %d INCRs: %d wrong (%d answering 1); "+
		"beta's pings failed %d; reloads %v, reload_failures %v", written.Round(time.Millisecond),
		applied.Round(time.Millisecond), ld.ops.Load(), ld.wrong.Load(), ld.ones.Load(), betaFailed(),
		doc["reloads"], doc["reload_failures"])
	checkCounters(t, ld, alpha, rs)
	if ld.err != nil {
		t.Errorf("a client of alpha: %v", ld.err)
	}
	if ld.wrong.Load() != 0 {
		t.Errorf("%d INCR replies wrong (%d answering 1): alpha ran on a half written server list", ld.wrong.Load(), ld.ones.Load())
	}
	if betaFailed() != 0 {
		t.Errorf("%d pings of beta's client failed: beta was removed by the half written file", betaFailed())
	}
	if doc["reloads"] != float64(1) || doc["reload_failures"] != float64(0) {
		t.Errorf("reloads %v, reload_failures %v, want 1 and 0", doc["reloads"], doc["reload_failures"])
	}
	if want := config.Digest([]byte(after)); doc["config_digest"] != want {
		t.Errorf("config_digest %v, want the whole file's %s", doc["config_digest"], want)
	}
	p.stop(t)
}

// checkCounters reads each counter back through the proxy at addr and
// from alpha's servers: each must hold the number of INCRs answered, on
// one server only.
func checkCounters(t *testing.T, ld *counterLoad, addr string, servers []*testservers.Server) {
	t.Helper()
	badValues, twice := 0, 0
	for key, n := range ld.incrs {
		if got := proxytest.Command(t, addr, "GET", key); got != strconv.FormatInt(n, 10) {
			badValues++
		}
		held := 0
		for _, r := range servers {
			if proxytest.Command(t, r.Addr, "EXISTS", key) == ":1" {
				held++
			}
		}
		if held > 1 {
			twice++
		}
	}
	t.Logf("%d counters: %d with a wrong value, %d on more than one server", len(ld.incrs), badValues, twice)
	if badValues != 0 || twice != 0 {
		t.Errorf("%d counters with a wrong value, %d on more than one server", badValues, twice)
	}
}
