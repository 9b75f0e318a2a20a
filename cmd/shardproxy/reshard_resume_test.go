//go:build linux

package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/hashring"
	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// poolStatOf returns a counter of pool alpha from a running binary's stats.
func poolStatOf(t *testing.T, p *proxyProcess, key string) int64 {
	t.Helper()
	pool, _ := proxytest.FetchStats(t, p.stats)["alpha"].(map[string]any)
	v, ok := pool[key].(float64)
	if !ok {
		t.Fatalf("stats: no number alpha.%s", key)
	}
	return int64(v)
}

// TestReshardResumeAfterKill starts the binary on a file that grows a
// pool of 2 servers to 3 at 300 keys per second, SIGKILLs it once it has
// moved some keys, and starts it again with the same file: the new
// process finishes the migration, and every key is then on its owner
// only, with its value and TTL.
func TestReshardResumeAfterKill(t *testing.T) {
	r := []*testservers.Server{testservers.Redis(t), testservers.Redis(t), testservers.Redis(t)}
	var lines []string
	hc := hashring.Config{Hash: "fnv1a_64", Distribution: "ketama"}
	for _, s := range r {
		lines = append(lines, s.Addr+":1")
		hc.Servers = append(hc.Servers, hashring.Server{Name: s.Addr, Weight: 1})
	}
	newPlace, err := hashring.New(hc)
	if err != nil {
		t.Fatal(err)
	}
	hc.Servers = hc.Servers[:2]
	oldPlace, err := hashring.New(hc)
	if err != nil {
		t.Fatal(err)
	}

	// The data, written where the pool of 2 placed it; every other key
	// expires in about a day.
	const n = 3000
	keys := make([]string, n)
	fill := make([][][]string, 2)
	moving := 0
	for i := range keys {
		keys[i] = fmt.Sprintf("%d:key", i)
		cmd := []string{"SET", keys[i], strconv.Itoa(i)}
		if i%2 == 0 {
			cmd = append(cmd, "PX", "90000000")
		}
		o := oldPlace.Pick([]byte(keys[i]))
		fill[o] = append(fill[o], cmd)
		if newPlace.Pick([]byte(keys[i])) != o {
			moving++
		}
	}
	for o, cmds := range fill {
		for _, rep := range proxytest.Texts(t, r[o].Addr, cmds) {
			if rep != "+OK" {
				t.Fatalf("SET on server %d: %q", o, rep)
			}
		}
	}

	listen := fmt.Sprintf("127.0.0.1:%d", testservers.FreePort(t, "127.0.0.1"))
	conf := writeConf(t, fmt.Sprintf("alpha:\n  listen: %s\n  redis: true\n  hash: fnv1a_64\n  distribution: ketama\n"+
		"  migrate_rate: 300\n  migrate_from: {servers: [%s, %s]}\n  servers:\n    - %s\n    - %s\n    - %s\n",
		listen, lines[0], lines[1], lines[0], lines[1], lines[2]))
	logPath := filepath.Join(t.TempDir(), "log")
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("the proxies' log:\n%s", b)
		}
	}()

	p := startProxyConf(t, conf, listen, io.Discard, "-o", logPath)
	p.waitFor(t, "100 keys moved", func() bool { return poolStatOf(t, p, "keys_migrated") >= 100 })
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
	// At 300 keys per second, about 1,000 keys to move take more than 3 s:
	// killed after some 100, most have not moved.
	moved := proxytest.Dbsize(t, r[2].Addr)
	if moved == 0 || moved >= moving {
		t.Fatalf("after SIGKILL the new server holds %d keys, want some of the %d that move, not all", moved, moving)
	}

	p = startProxyConf(t, conf, listen, io.Discard, "-o", logPath)
	for deadline := time.Now().Add(30 * time.Second); poolStatOf(t, p, "migration_pending") != 0; time.Sleep(20 * time.Millisecond) {
		p.check(t)
		if time.Now().After(deadline) {
			t.Fatalf("migration_pending %d 30 s after the restart", poolStatOf(t, p, "migration_pending"))
		}
	}
	after := poolStatOf(t, p, "keys_migrated")
	t.Logf("%d of %d keys moved before SIGKILL, %d after the restart", moved, moving, after)
	if after == 0 || poolStatOf(t, p, "migration_errors") != 0 {
		t.Errorf("after the restart: keys_migrated %d, migration_errors %d; want > 0 and 0",
			after, poolStatOf(t, p, "migration_errors"))
	}
	checkOwners(t, r, keys, func(k string) int { return newPlace.Pick([]byte(k)) })
}

// checkOwners checks that key i ("<i>:key") is on server owner(key) only,
// with value i, and with a TTL when i is even.
func checkOwners(t *testing.T, r []*testservers.Server, keys []string, owner func(string) int) {
	t.Helper()
	var cmds [][]string
	for _, k := range keys {
		cmds = append(cmds, []string{"GET", k}, []string{"PTTL", k})
	}
	total, bad := 0, 0
	for s, srv := range r {
		replies := proxytest.Texts(t, srv.Addr, cmds)
		for i, k := range keys {
			val, pttl := replies[2*i], replies[2*i+1]
			want, wantTTL := "(nil)", "none"
			if owner(k) == s {
				want, wantTTL = strconv.Itoa(i), "persistent"
				if i%2 == 0 {
					wantTTL = "expiring"
				}
			}
			ttl := "none"
			switch {
			case pttl == ":-1":
				ttl = "persistent"
			case pttl != ":-2":
				ttl = "expiring"
			}
			if (val != want || ttl != wantTTL) && bad < 10 {
				bad++
				t.Errorf("server %d, key %s (owner %d): %q, %s (%s); want %q, %s", s, k, owner(k), val, ttl, pttl, want, wantTTL)
			}
		}
		total += proxytest.Dbsize(t, srv.Addr)
	}
	if total != len(keys) {
		t.Errorf("the servers hold %d keys, want %d", total, len(keys))
	}
}
