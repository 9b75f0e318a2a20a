package proxy_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/proxy"
)

// startSentinelsWith starts 2 shards as startSentinels does, watched by 3 Sentinels
// with opt.
func startSentinelsWith(t *testing.T, opt testservers.SentinelOptions) ([]failoverShard, []*testservers.Server) {
	t.Helper()
	var shards []failoverShard
	masters := map[string]string{}
	for i := range 2 {
		p := testservers.Redis(t)
		r := testservers.RedisReplica(t, p)
		sh := failoverShard{name: fmt.Sprintf("shard%d", i+1), primary: p, replica: r}
		shards = append(shards, sh)
		masters[sh.name] = p.Addr
	}
	return shards, testservers.Sentinels(t, 3, masters, opt)
}

// sentinelLogged says whether one of sents logged a line with event for
// master since the time given.
func sentinelLogged(t *testing.T, sents []*testservers.Server, event, master string, since time.Time) bool {
	for _, s := range sents {
		data, err := os.ReadFile(s.SentinelLog())
		if err != nil {
			t.Logf("sentinel log: %v", err)
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			_, rest, ok := strings.Cut(line, ":X ")
			if !ok || len(rest) < 24 || !strings.Contains(rest, "# "+event) || !strings.Contains(rest, " "+master+" ") {
				continue
			}
			at, err := time.ParseInLocation("02 Jan 2006 15:04:05.000", rest[:24], time.Local)
			if err == nil && !at.Before(since.Add(-time.Millisecond)) {
				return true
			}
		}
	}
	return false
}

// TestAbortedFailover: a failover the Sentinels abort (failover-timeout
// 500 ms, SENTINEL FAILOVER of a live primary: the replica selected is
// told REPLICAOF NO ONE, then the Sentinel gives up waiting for it) must
// not move the proxy's writes to that replica, which the Sentinels later
// turn back into a replica, throwing away what it accepted: every write
// acknowledged through the proxy is on the primary the Sentinels report.
// A failover that is not aborted (they race) is followed, and tried again.
func TestAbortedFailover(t *testing.T) {
	shards, sents := startSentinelsWith(t, testservers.SentinelOptions{DownAfter: time.Second, FailoverTimeout: 500 * time.Millisecond})
	listen := proxytest.FreeListen(t)
	px := proxytest.StartProxyOpts(t, sentinelPoolYAML(listen, shards, sents, func(sh failoverShard) string { return sh.primary.Addr }),
		proxy.Options{StatsAddr: "127.0.0.1:0"})
	w := newFailoverWriter(shards)
	w.run(t, listen)
	defer func() {
		select {
		case <-w.stop:
		default:
			w.halt()
		}
	}()
	time.Sleep(500 * time.Millisecond)

	primary := shards[0].primary.Addr
	var start time.Time
	aborted := false
	for attempt := 1; attempt <= 8 && !aborted; attempt++ {
		start = time.Now()
		testservers.Failover(t, sents[0], "shard1", 30*time.Second)
		for time.Since(start) < 5*time.Second {
			if sentinelLogged(t, sents, "-failover-abort", "shard1", start) {
				aborted = true
				break
			}
			if sentinelLogged(t, sents, "+switch-master", "shard1", start) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if aborted {
			t.Logf("attempt %d: the Sentinels aborted the failover (%s)", attempt, sentinelTimeline(t, sents, "shard1", start))
			break
		}
		primary = testservers.WaitMaster(t, sents, "shard1", primary, 30*time.Second)
		t.Logf("attempt %d: the failover was not aborted: primary now %s; again", attempt, primary)
		time.Sleep(1500 * time.Millisecond) // a forced failover waits for the last one's timeout
	}
	if !aborted {
		t.Fatal("no failover was aborted in 8 attempts")
	}
	// The writes go on while the aborted replica is still a primary (the
	// Sentinels turn it back only seconds later).
	time.Sleep(2 * time.Second)
	w.halt()
	if got := serverStat(t, px, "shard1", "primary"); got != primary {
		t.Errorf("stats: shard1 primary %v after the aborted failover, want %s", got, primary)
	}
	for _, s := range sents {
		if a, err := testservers.MasterAddr(s.Addr, "shard1"); err != nil || a != primary {
			t.Fatalf("sentinel %s reports %q (%v) after the abort, want %s", s.Addr, a, err, primary)
		}
	}

	// Every write to shard1 acknowledged since the failover began must be
	// on the primary the Sentinels report.
	w.mu.Lock()
	var keys []string
	var cmds [][]string
	for k, a := range w.acked {
		if w.shardOf(k) == 0 && a.at.After(start) {
			keys = append(keys, k)
			cmds = append(cmds, []string{"GET", k})
		}
	}
	w.mu.Unlock()
	lost := 0
	for i, rep := range proxytest.Pipeline(t, primary, cmds) {
		if rep != proxytest.Bulk(w.acked[keys[i]].val) {
			lost++
		}
	}
	back, failed := w.recovered(0, start)
	t.Logf("aborted failover: %d of %d writes to shard1 acknowledged since SENTINEL FAILOVER are not on the primary "+
		"(lost once the Sentinels turn the replica back); %d writes failed, all succeed again after %v; the longest "+
		"pause between two acknowledged writes to shard1 was %v",
		lost, len(keys), failed, back.Round(time.Millisecond), w.longestPause(0, start).Round(time.Millisecond))
	if lost != 0 {
		t.Errorf("%d acknowledged writes lost in the aborted failover, want 0", lost)
	}
	if back < 0 {
		t.Errorf("writes to shard1 still fail after the aborted failover: %v", w.samples)
	}
}

// longestPause returns the longest time between two acknowledged writes
// to shard after from.
func (w *failoverWriter) longestPause(shard int, from time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var last time.Time
	var longest time.Duration
	for _, e := range w.events[shard] {
		if !e.ok || e.at.Before(from) {
			continue
		}
		if !last.IsZero() && e.at.Sub(last) > longest {
			longest = e.at.Sub(last)
		}
		last = e.at
	}
	return longest
}

// TestLyingSentinel: a fourth Sentinel, outside the group of three that
// watch the shards, claims a far newer configuration (config-epoch 1000)
// naming, for shard1, a port that is not Redis (a memcached) and, for
// shard2, a replica of an unrelated primary. It is first in the proxy's
// list. The proxy must stay on the primaries the three agree on, which
// pass its ROLE check: no write fails, none is lost, and a failover of
// the group is still followed.
func TestLyingSentinel(t *testing.T) {
	shards, sents := startSentinelsWith(t, testservers.SentinelOptions{DownAfter: time.Second, FailoverTimeout: 3 * time.Second})
	notRedis := testservers.Memcached(t)
	other := testservers.Redis(t)
	otherReplica := testservers.RedisReplica(t, other)
	liar := testservers.Sentinel(t, map[string]string{"shard1": notRedis.Addr, "shard2": otherReplica.Addr},
		testservers.SentinelOptions{ConfigEpoch: 1000, DownAfter: time.Minute})
	for name, want := range map[string]string{"shard1": notRedis.Addr, "shard2": otherReplica.Addr} {
		if a, err := testservers.MasterAddr(liar.Addr, name); err != nil || a != want {
			t.Fatalf("the lying Sentinel names %q (%v) for %s, want %s", a, err, name, want)
		}
	}
	all := append([]*testservers.Server{liar}, sents...)
	listen := proxytest.FreeListen(t)
	px := proxytest.StartProxyOpts(t, sentinelPoolYAML(listen, shards, all, func(sh failoverShard) string { return sh.primary.Addr }),
		proxy.Options{StatsAddr: "127.0.0.1:0"})
	waitPoolStat(t, px, "sentinels_up", 4, 10*time.Second)
	w := newFailoverWriter(shards)
	w.run(t, listen)
	defer func() {
		select {
		case <-w.stop:
		default:
			w.halt()
		}
	}()
	time.Sleep(2 * time.Second)
	for _, sh := range shards {
		if got := serverStat(t, px, sh.name, "primary"); got != sh.primary.Addr {
			t.Errorf("%s: primary %v with a lying Sentinel, want %s", sh.name, got, sh.primary.Addr)
		}
	}
	if n := w.failures(0, time.Time{}) + w.failures(1, time.Time{}); n != 0 {
		t.Errorf("%d writes failed with a lying Sentinel: %v", n, w.samples)
	}

	// The group's failover is still followed.
	kill := time.Now()
	shards[1].primary.Kill()
	promoted := testservers.WaitMaster(t, sents, "shard2", shards[1].primary.Addr, 30*time.Second)
	waitFailovers(t, px, "shard2", 1, 10*time.Second)
	if got := serverStat(t, px, "shard2", "primary"); got != promoted {
		t.Errorf("shard2: primary %v after the failover, want %s", got, promoted)
	}
	time.Sleep(time.Second)
	w.halt()
	back, failed := w.recovered(1, kill)
	t.Logf("with a lying Sentinel: %d writes failed before the failover; shard2 failed over, writes succeed again "+
		"after %v (%d failed meanwhile)", w.failures(0, time.Time{})+w.failures(1, time.Time{})-failed, back, failed)
	if back < 0 {
		t.Errorf("writes to shard2 still fail after its failover: %v", w.samples)
	}
	if n := w.failures(0, time.Time{}); n != 0 {
		t.Errorf("%d writes to shard1 failed", n)
	}
	w.check(t, listen, kill)
}

// lastFailure returns when the last write to shard after from failed
// (the zero time if none did).
func (w *failoverWriter) lastFailure(shard int, from time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	var last time.Time
	for _, e := range w.events[shard] {
		if !e.ok && e.at.After(from) {
			last = e.at
		}
	}
	return last
}
