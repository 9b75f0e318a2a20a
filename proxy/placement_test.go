package proxy_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// placementKeys returns n distinct keys of several shapes: plain, with a
// hash tag, with bytes >= 0x80 (nutcracker's hashes read them as signed),
// with an empty tag, and very short.
func placementKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		switch i % 5 {
		case 0:
			keys[i] = fmt.Sprintf("key:%d", i)
		case 1:
			keys[i] = fmt.Sprintf("user:{%d}:profile:%d", i/10, i)
		case 2:
			keys[i] = fmt.Sprintf("bin\xff\x80%c:%d", byte(i), i)
		case 3:
			keys[i] = fmt.Sprintf("{}empty-tag:%d", i)
		default:
			keys[i] = fmt.Sprint(i)
		}
	}
	return keys
}

// TestPlacementMatchesNutcracker writes keys through nutcracker and reads
// each one through the proxy, over the same four servers with the same pool
// configuration: every key must be where the proxy looks for it.
func TestPlacementMatchesNutcracker(t *testing.T) {
	tests := []struct {
		name         string
		hash, dist   string
		weights      []int
		names        []string
		keysExpected int // backends that must receive keys
	}{
		{name: "ketama fnv1a_64", hash: "fnv1a_64", dist: "ketama", weights: []int{1, 2, 1, 3}, keysExpected: 4},
		{name: "ketama murmur", hash: "murmur", dist: "ketama", weights: []int{2, 1, 1, 1}, keysExpected: 4},
		{name: "ketama murmur named", hash: "murmur", dist: "ketama", weights: []int{1, 1, 2, 1},
			names: []string{"shard-d", "shard-b", "shard-a", "shard-cc"}, keysExpected: 4},
		{name: "modula md5", hash: "md5", dist: "modula", weights: []int{1, 2, 3, 1}, keysExpected: 4},
	}
	keys := placementKeys(2000)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			backends := proxytest.StartRedisBackends(t, 4)
			rp := proxytest.Pool{Hash: tc.hash, Distribution: tc.dist, HashTag: "{}",
				Servers: proxytest.ServerLines(backends, tc.weights, tc.names)}
			ncListen := proxytest.FreeListen(t)
			testservers.Nutcracker(t, rp.YAML("nut", ncListen), ncListen)
			px := proxytest.StartProxy(t, rp.YAML("shard", proxytest.FreeListen(t)))

			sets := make([][]string, len(keys))
			gets := make([][]string, len(keys))
			for i, k := range keys {
				sets[i] = []string{"SET", k, fmt.Sprintf("v%d", i)}
				gets[i] = []string{"GET", k}
			}
			for i, r := range proxytest.Pipeline(t, ncListen, sets) {
				if r != "+OK\r\n" {
					t.Fatalf("SET %q through nutcracker: %q", keys[i], r)
				}
			}
			missing := 0
			for i, r := range proxytest.Pipeline(t, px.Addr(0).String(), gets) {
				if want := proxytest.Bulk(fmt.Sprintf("v%d", i)); r != want {
					missing++
					if missing <= 5 {
						t.Errorf("GET %q through the proxy: %q, want %q", keys[i], r, want)
					}
				}
			}
			if missing > 0 {
				t.Errorf("%d of %d keys not found where nutcracker put them", missing, len(keys))
			}
			checkSpread(t, backends, tc.keysExpected, len(keys))
		})
	}
}

// checkSpread checks that keys landed on the given number of servers and
// that they hold total keys in all.
func checkSpread(t *testing.T, backends []*testservers.Server, servers, total int) {
	t.Helper()
	used, sum := 0, 0
	for _, b := range backends {
		n := proxytest.Dbsize(t, b.Addr)
		sum += n
		if n > 0 {
			used++
		}
	}
	if used != servers || sum != total {
		t.Errorf("keys on %d servers (%d in all); want %d servers, %d keys", used, sum, servers, total)
	}
}

// TestServerHostNames checks servers written with a host name.
func TestServerHostNames(t *testing.T) {
	backends := proxytest.StartRedisBackends(t, 2)
	var lines []string
	for _, b := range backends {
		lines = append(lines, fmt.Sprintf("localhost:%d:1", b.Port))
	}
	px := proxytest.StartProxy(t, proxytest.Pool{Servers: lines}.YAML("names", proxytest.FreeListen(t)))
	c := proxytest.NewGoRedis(t, px.Addr(0).String())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 100; i++ {
		k := fmt.Sprintf("%d:host:key", i)
		if err := c.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
		if v, err := c.Get(ctx, k).Int(); err != nil || v != i {
			t.Fatalf("GET %s: %d, %v", k, v, err)
		}
	}
	for _, b := range backends {
		if n := proxytest.Dbsize(t, b.Addr); n == 0 || n == 100 {
			t.Errorf("server %s holds %d of 100 keys; want them spread", b.Addr, n)
		}
	}
}
