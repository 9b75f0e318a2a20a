package proxy_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
)

// The tests in this file write values over 1 MB through a server
// connection that many clients use meanwhile, and check that the requests
// which follow still reach the server intact and get their own replies.
// A queued-request buffer over 1 MB, once written, was not kept as the
// spare buffer, so the connection's queue and its spare became the same
// array: frames queued during the next write overwrote the bytes being
// written, the server saw torn frames and clients got each other's replies.

// writeReadPairs runs n goroutines for d; each calls pair(g, i) in a loop,
// which writes a fresh value, reads it back and returns what it read, what
// it wrote, and any error. It returns the number of pairs and the failures.
func writeReadPairs(n int, d time.Duration, pair func(g, i int) (got, want string, err error)) (int, []string) {
	var mu sync.Mutex
	var ops int
	var bad []string
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for g := 0; g < n; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				got, want, err := pair(g, i)
				mu.Lock()
				ops++
				if err != nil || got != want {
					bad = append(bad, fmt.Sprintf("goroutine %d: got %q, want %q (%v)", g, proxytest.Short(got), want, err))
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	return ops, bad
}

// reportPairs fails the test on failed pairs, showing the first five.
func reportPairs(t *testing.T, what string, ops int, bad []string) {
	t.Helper()
	t.Logf("%s: %d write+read pairs, %d wrong or failed", what, ops, len(bad))
	for i, b := range bad {
		if i == 5 {
			break
		}
		t.Error(b)
	}
	if ops == 0 {
		t.Error("no request made")
	}
}

// TestIntegrityAfterLargeWrite: Redis SETs of 2 MB amid SET/GET pairs.
func TestIntegrityAfterLargeWrite(t *testing.T) {
	proxytest.RunParallel(t)
	f := proxytest.StartFixture(t, proxytest.Pool{Keys: []string{"timeout: 2000"}}, proxytest.StartRedisBackends(t, 1))
	rc := proxytest.NoRetryClient(t, f.Addr, nil, 40)
	ctx := context.Background()
	go func() {
		for i := 0; i < 3; i++ {
			time.Sleep(200 * time.Millisecond)
			rc.Set(ctx, "ftlarge:big", strings.Repeat("x", 2<<20), 0)
		}
	}()
	ops, bad := writeReadPairs(32, 1500*time.Millisecond, func(g, i int) (string, string, error) {
		key, val := fmt.Sprintf("ftlarge:%d", g), fmt.Sprintf("g%d:%d", g, i)
		if err := rc.Set(ctx, key, val, 0).Err(); err != nil {
			return "", val, err
		}
		got, err := rc.Get(ctx, key).Result()
		return got, val, err
	})
	reportPairs(t, "around three 2 MB SETs", ops, bad)
}

// TestIntegrityAfterLargeNoreply: memcache "set ... noreply" of 2 MB
// (a noreply frame is always copied into the queue) amid set/get pairs.
func TestIntegrityAfterLargeNoreply(t *testing.T) {
	proxytest.RunParallel(t)
	f := proxytest.StartFixture(t, proxytest.Pool{Memcache: true, Keys: []string{"timeout: 2000"}}, proxytest.StartMemcacheBackends(t, 1, "-I", "4m"))
	conns := make([]*proxytest.Conn, 33)
	for i := range conns {
		conns[i] = proxytest.Dial(t, f.Addr)
	}
	big := fmt.Sprintf("set ftmcl:big 0 0 %d noreply\r\n%s\r\n", 2<<20, strings.Repeat("x", 2<<20))
	go func() {
		for i := 0; i < 3; i++ {
			time.Sleep(200 * time.Millisecond)
			conns[32].Net.SetWriteDeadline(time.Now().Add(5 * time.Second))
			conns[32].Net.Write([]byte(big))
		}
	}()
	ops, bad := writeReadPairs(32, 1500*time.Millisecond, func(g, i int) (string, string, error) {
		key, val := fmt.Sprintf("ftmcl:%d", g), fmt.Sprintf("g%d:%d", g, i)
		want := fmt.Sprintf("STORED\r\nVALUE %s 0 %d\r\n%s\r\nEND\r\n", key, len(val), val)
		got, err := conns[g].TryExchange(fmt.Sprintf("set %s 0 0 %d\r\n%s\r\nget %s\r\n", key, len(val), val, key), want)
		return got, want, err
	})
	reportPairs(t, "around three 2 MB noreply sets", ops, bad)
}
