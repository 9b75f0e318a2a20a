//go:build linux

package sentinel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

// The tests below run real redis-server and redis-sentinel processes.

// TestResolve asks a Sentinel for a master, with Sentinels up, down and
// silent, and for a master it does not know.
func TestResolve(t *testing.T) {
	t.Parallel()
	p := testservers.Redis(t)
	s := testservers.Sentinel(t, map[string]string{"shard1": p.Addr}, testservers.SentinelOptions{})
	dead1, dead2, hole := deadAddr(t), deadAddr(t), silentAddr(t)
	ctx := context.Background()

	t.Run("up", func(t *testing.T) {
		sw := &switches{}
		w := watcher(t, Options{Addrs: []string{s.Addr}, Masters: []string{"shard1"}, OnSwitch: sw.on})
		for range 2 {
			if got, err := w.Resolve(ctx, "shard1"); got != p.Addr || err != nil {
				t.Fatalf("Resolve = %q, %v; want %s", got, err, p.Addr)
			}
		}
		sw.expect(t, "shard1="+p.Addr) // once: the second answer is the same
	})
	t.Run("some down", func(t *testing.T) {
		w := watcher(t, Options{Addrs: []string{dead1, hole, s.Addr}, Timeout: 300 * time.Millisecond})
		for i := range 3 { // starting at each Sentinel in turn
			if got, err := w.Resolve(ctx, "shard1"); got != p.Addr || err != nil {
				t.Fatalf("Resolve #%d = %q, %v; want %s", i, got, err, p.Addr)
			}
		}
	})
	t.Run("all down", func(t *testing.T) {
		w := watcher(t, Options{Addrs: []string{dead1, dead2, hole}, Timeout: 300 * time.Millisecond})
		start := time.Now()
		_, err := w.Resolve(ctx, "shard1")
		if err == nil {
			t.Fatal("Resolve with every Sentinel down succeeded")
		}
		for _, want := range []string{dead1 + ": dial", dead2 + ": dial", "connection refused", hole + ": ", "timeout"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Resolve took %v with a 300ms timeout", d)
		}
	})
	t.Run("unknown master", func(t *testing.T) {
		w := watcher(t, Options{Addrs: []string{s.Addr}})
		_, err := w.Resolve(ctx, "nosuch")
		if !errors.Is(err, ErrUnknownMaster) || !strings.Contains(err.Error(), s.Addr) {
			t.Fatalf("Resolve of an unknown master: %v; want ErrUnknownMaster naming %s", err, s.Addr)
		}
		if _, err := w.Replicas(ctx, "nosuch"); !errors.Is(err, ErrUnknownMaster) {
			t.Fatalf("Replicas of an unknown master: %v; want ErrUnknownMaster", err)
		}
	})
	t.Run("context", func(t *testing.T) {
		w := watcher(t, Options{Addrs: []string{hole}, Timeout: 10 * time.Second})
		ctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := w.Resolve(ctx, "shard1"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Resolve past its context's deadline: %v", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("Resolve took %v with a context of 200ms", d)
		}
	})
}

// TestFailover kills a primary under three Sentinels and checks that the
// Watcher reports its replica once, and nothing of a master it does not
// follow.
func TestFailover(t *testing.T) {
	t.Parallel()
	p1 := testservers.Redis(t)
	r1 := testservers.RedisReplica(t, p1)
	p2 := testservers.Redis(t)
	r2 := testservers.RedisReplica(t, p2)
	ss := testservers.Sentinels(t, 3, map[string]string{"shard1": p1.Addr, "shard2": p2.Addr},
		testservers.SentinelOptions{DownAfter: 500 * time.Millisecond})
	sw := &switches{}
	w := watcher(t, Options{Addrs: addrs(ss), Masters: []string{"shard1"}, OnSwitch: sw.on, Retry: 100 * time.Millisecond})
	w.Start()
	sw.wait(t, "shard1="+p1.Addr, 10*time.Second)
	for _, s := range ss {
		waitStatus(t, w, s.Addr, true, 10*time.Second)
	}
	ctx := context.Background()
	if got, err := w.Replicas(ctx, "shard1"); err != nil || !slices.Equal(got, []string{r1.Addr}) {
		t.Fatalf("Replicas = %q, %v; want [%s]", got, err, r1.Addr)
	}

	testservers.Failover(t, ss[0], "shard2", 15*time.Second) // not followed: never reported
	start := time.Now()
	p1.Kill()
	sw.wait(t, "shard1="+r1.Addr, 25*time.Second)
	t.Logf("failover reported %v after SIGKILL", time.Since(start))
	testservers.WaitMaster(t, ss, "shard1", p1.Addr, 20*time.Second) // every Sentinel has announced it
	if got := testservers.WaitMaster(t, ss, "shard2", p2.Addr, 20*time.Second); got != r2.Addr {
		t.Fatalf("shard2 failed over to %s, want %s", got, r2.Addr)
	}
	time.Sleep(300 * time.Millisecond) // for any late message
	sw.expect(t, "shard1="+p1.Addr, "shard1="+r1.Addr)

	if got, err := w.Resolve(ctx, "shard1"); got != r1.Addr || err != nil {
		t.Fatalf("Resolve after the failover = %q, %v; want %s", got, err, r1.Addr)
	}
	// The old primary is now a replica the Sentinels cannot reach.
	waitFor(t, 10*time.Second, "no usable replica of shard1", func() string {
		got, err := w.Replicas(ctx, "shard1")
		if err == nil && len(got) == 0 {
			return ""
		}
		return fmt.Sprintf("Replicas = %q, %v", got, err)
	})
	sw.expect(t, "shard1="+p1.Addr, "shard1="+r1.Addr)
}

// TestReconnect kills the one Sentinel a Watcher subscribes to, restarts
// it, and checks that the subscription comes back and sees a failover.
func TestReconnect(t *testing.T) {
	t.Parallel()
	p := testservers.Redis(t)
	r := testservers.RedisReplica(t, p)
	ss := testservers.Sentinels(t, 3, map[string]string{"shard1": p.Addr},
		testservers.SentinelOptions{DownAfter: 500 * time.Millisecond})
	sw := &switches{}
	w := watcher(t, Options{Addrs: []string{ss[0].Addr}, Masters: []string{"shard1"}, OnSwitch: sw.on,
		Retry: 100 * time.Millisecond, Timeout: 500 * time.Millisecond})
	w.Start()
	waitStatus(t, w, ss[0].Addr, true, 10*time.Second)
	sw.wait(t, "shard1="+p.Addr, time.Second)

	ss[0].Kill()
	waitStatus(t, w, ss[0].Addr, false, 5*time.Second)
	all := watcher(t, Options{Addrs: addrs(ss), Timeout: 500 * time.Millisecond})
	for i := range 3 { // the first Sentinel asked is down once at least
		if got, err := all.Resolve(context.Background(), "shard1"); got != p.Addr || err != nil {
			t.Fatalf("Resolve #%d with %s down = %q, %v; want %s", i, ss[0].Addr, got, err, p.Addr)
		}
	}
	ss[0].Restart()
	waitStatus(t, w, ss[0].Addr, true, 10*time.Second)

	start := time.Now()
	p.Kill()
	sw.wait(t, "shard1="+r.Addr, 25*time.Second)
	t.Logf("failover reported through the restarted Sentinel %v after SIGKILL", time.Since(start))
	sw.expect(t, "shard1="+p.Addr, "shard1="+r.Addr)
}

// TestResubscribeRequeries drops the Watcher's subscription, fails the
// master over while it is down, and checks that the query made when it
// comes back (an answer that differs, so every Sentinel is asked) reports
// the new address. It also checks Requery.
func TestResubscribeRequeries(t *testing.T) {
	t.Parallel()
	p := testservers.Redis(t)
	r := testservers.RedisReplica(t, p)
	s := testservers.Sentinel(t, map[string]string{"shard1": p.Addr}, testservers.SentinelOptions{})
	const retry = 5 * time.Second
	var logs logBuffer
	sw := &switches{}
	w := watcher(t, Options{Addrs: []string{s.Addr}, Masters: []string{"shard1"}, OnSwitch: sw.on, Retry: retry,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	w.Start()
	waitStatus(t, w, s.Addr, true, 10*time.Second)
	sw.wait(t, "shard1="+p.Addr, time.Second)
	rsw := &switches{}
	rw := watcher(t, Options{Addrs: []string{s.Addr}, Masters: []string{"shard1"}, OnSwitch: rsw.on})
	rw.Requery("shard1")
	rsw.wait(t, "shard1="+p.Addr, 5*time.Second)

	if _, err := testservers.Do(s.Addr, "CLIENT", "KILL", "TYPE", "pubsub"); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, w, s.Addr, false, 5*time.Second)
	down := time.Now()
	testservers.Failover(t, s, "shard1", 10*time.Second)
	testservers.WaitMaster(t, []*testservers.Server{s}, "shard1", p.Addr, 20*time.Second)
	if w.Status()[s.Addr] {
		t.Skipf("failover took %v, longer than Retry (%v): the subscription is back already", time.Since(down), retry)
	}
	sw.wait(t, "shard1="+r.Addr, retry+10*time.Second)
	sw.expect(t, "shard1="+p.Addr, "shard1="+r.Addr)
	if want := fmt.Sprintf(`new=%s via="1 of 1 Sentinels answering, named by 1, first %s"`, r.Addr, s.Addr); !strings.Contains(logs.String(), want) {
		t.Errorf("log does not show %s:\n%s", want, logs.String())
	}

	rw.Requery("shard1")
	rsw.wait(t, "shard1="+r.Addr, 5*time.Second)
	rsw.expect(t, "shard1="+p.Addr, "shard1="+r.Addr)
}

// TestPassword authenticates to a Sentinel with requirepass, with and
// without a user name, and fails with a wrong or no password.
func TestPassword(t *testing.T) {
	t.Parallel()
	const pw = "s3cret"
	p := testservers.Redis(t)
	s := testservers.Sentinel(t, map[string]string{"shard1": p.Addr}, testservers.SentinelOptions{Password: pw})
	ctx := context.Background()
	for _, tc := range []struct {
		name, user, password string
		wantErr              string // "" for success
	}{
		{"password", "", pw, ""},
		{"user and password", "default", pw, ""},
		{"wrong password", "", "wrong", "AUTH: WRONGPASS"},
		{"wrong user", "nobody", pw, "AUTH: WRONGPASS"},
		{"no password", "", "", "NOAUTH"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs logBuffer
			sw := &switches{}
			w := watcher(t, Options{Addrs: []string{s.Addr}, Username: tc.user, Password: tc.password,
				Masters: []string{"shard1"}, OnSwitch: sw.on, Retry: 50 * time.Millisecond,
				Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			got, err := w.Resolve(ctx, "shard1")
			if tc.wantErr == "" {
				if got != p.Addr || err != nil {
					t.Fatalf("Resolve = %q, %v; want %s", got, err, p.Addr)
				}
				w.Start()
				waitStatus(t, w, s.Addr, true, 5*time.Second)
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), s.Addr) {
				t.Fatalf("Resolve = %q, %v; want an error with %q and %s", got, err, tc.wantErr, s.Addr)
			}
			w.Start()
			time.Sleep(500 * time.Millisecond) // several retries
			if w.Status()[s.Addr] {
				t.Fatal("subscription up without the password")
			}
			if n := strings.Count(logs.String(), "level=WARN"); n != 1 || !strings.Contains(logs.String(), tc.wantErr) {
				t.Fatalf("want one warning with %q, got:\n%s", tc.wantErr, logs.String())
			}
			sw.expect(t)
		})
	}
}

// TestRequeryCoalesces calls Requery in a tight loop for a second and
// counts the connections the Sentinel received.
func TestRequeryCoalesces(t *testing.T) {
	t.Parallel()
	p := testservers.Redis(t)
	s := testservers.Sentinel(t, map[string]string{"shard1": p.Addr}, testservers.SentinelOptions{})
	sw := &switches{}
	w := watcher(t, Options{Addrs: []string{s.Addr}, Masters: []string{"shard1"}, OnSwitch: sw.on})

	before := connections(t, s.Addr)
	calls := 0
	start := time.Now()
	for time.Since(start) < time.Second {
		w.Requery("shard1")
		w.Requery("other") // not followed: never asked
		calls++
		time.Sleep(100 * time.Microsecond)
	}
	elapsed := time.Since(start)
	time.Sleep(requeryEvery + 500*time.Millisecond) // the last query, pending at the end
	queries := connections(t, s.Addr) - before - 1  // the INFO of before
	most := int(elapsed/requeryEvery) + 2
	t.Logf("%d Requery calls in %v: %d queries", calls, elapsed, queries)
	if queries < 2 || queries > most {
		t.Fatalf("%d Requery calls in %v made %d queries, want 2 to %d", calls, elapsed, queries, most)
	}
	sw.expect(t, "shard1="+p.Addr)
}

// TestClose closes Watchers whose Sentinels are up, refuse connections,
// or accept them and never answer, with a Resolve and a Requery under
// way, and checks that Close returns at once and leaves no goroutine.
// Not parallel: it counts the goroutines of the process.
func TestClose(t *testing.T) {
	p := testservers.Redis(t)
	s := testservers.Sentinel(t, map[string]string{"shard1": p.Addr}, testservers.SentinelOptions{})
	dead, hole := deadAddr(t), silentAddr(t)
	base := runtime.NumGoroutine()
	for _, tc := range []struct {
		name  string
		addrs []string
	}{
		{"up", []string{s.Addr}},
		{"refused", []string{dead}},
		{"silent", []string{hole}},
		{"all", []string{s.Addr, dead, hole}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := New(Options{Addrs: tc.addrs, Masters: []string{"shard1"}, Timeout: 10 * time.Second, Retry: 10 * time.Second})
			w.Start()
			if tc.addrs[0] == s.Addr {
				waitStatus(t, w, s.Addr, true, 10*time.Second)
			}
			w.Requery("shard1")
			resolved := make(chan error, 1)
			go func() {
				_, err := w.Resolve(context.Background(), "shard1")
				resolved <- err
			}()
			time.Sleep(100 * time.Millisecond)
			start := time.Now()
			w.Close()
			if d := time.Since(start); d > time.Second {
				t.Errorf("Close took %v", d)
			}
			w.Close()
			w.Start()
			w.Requery("shard1")
			select {
			case err := <-resolved:
				t.Logf("Resolve during Close: %v", err)
			case <-time.After(time.Second):
				t.Errorf("Resolve under way still blocked a second after Close")
			}
			if _, err := w.Resolve(context.Background(), "shard1"); !errors.Is(err, ErrClosed) {
				t.Errorf("Resolve after Close: %v; want ErrClosed", err)
			}
		})
	}
	waitFor(t, 5*time.Second, "no goroutine left", func() string {
		if n := runtime.NumGoroutine(); n > base {
			buf := make([]byte, 1<<16)
			return fmt.Sprintf("%d goroutines, %d before:\n%s", n, base, buf[:runtime.Stack(buf, true)])
		}
		return ""
	})
}

// TestPausedSentinel: a Sentinel that keeps its connection but answers
// nothing (SIGSTOP) is noticed by the subscription's PINGs: Status goes
// false within the timeout plus three PINGs, and true again once it goes
// on.
func TestPausedSentinel(t *testing.T) {
	t.Parallel()
	p := testservers.Redis(t)
	s := testservers.Sentinel(t, map[string]string{"shard1": p.Addr}, testservers.SentinelOptions{})
	w := watcher(t, Options{Addrs: []string{s.Addr}, Masters: []string{"shard1"},
		Retry: 100 * time.Millisecond, Timeout: 500 * time.Millisecond})
	w.Start()
	waitStatus(t, w, s.Addr, true, 10*time.Second)
	start := time.Now()
	s.Stop()
	waitStatus(t, w, s.Addr, false, 10*time.Second)
	t.Logf("a paused Sentinel noticed after %v", time.Since(start).Round(time.Millisecond))
	if d := time.Since(start); d > 500*time.Millisecond+3*pingEvery+2*time.Second {
		t.Errorf("noticed after %v", d)
	}
	s.Continue()
	waitStatus(t, w, s.Addr, true, 10*time.Second)
}
