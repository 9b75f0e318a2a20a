package hashring_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"testing"

	"github.com/shardproxy/shardproxy/hashring"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// startMemcachedBackends starts memcached on 127.0.0.2-4 port 11211, where
// nutcracker names a server by its host alone, after one on a free port of
// 127.0.0.1. A loopback address whose port 11211 is taken is left out.
func startMemcachedBackends(t *testing.T) []backend {
	t.Helper()
	// The free-port server comes first, so that configuration order differs
	// from nutcracker's name order (shorter names first).
	srvs := []*testservers.Server{testservers.Memcached(t)}
	for _, host := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		addr := net.JoinHostPort(host, strconv.Itoa(hashring.DefaultKetamaPort))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Logf("leaving out memcached on %s: %v", addr, err)
			continue
		}
		ln.Close()
		srvs = append(srvs, testservers.MemcachedOn(t, host, hashring.DefaultKetamaPort))
	}
	bs := make([]backend, len(srvs))
	for i, s := range srvs {
		c, err := dialWire(s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		bs[i] = backend{srv: s, conn: c}
	}
	return bs
}

func TestPlacementMatchesNutcrackerMemcache(t *testing.T) {
	if testing.Short() {
		t.Skip("starts memcached and nutcracker")
	}
	bs := startMemcachedBackends(t)
	keys := memcacheKeys()
	cases := []poolCase{
		{"fnv1a_64", "ketama", len(bs), "plain"},
		{"md5", "ketama", len(bs), "plain"},
		{"murmur", "ketama", len(bs), "plain"},
		{"crc32", "ketama", len(bs), "plain"},
		{"jenkins", "ketama", len(bs), "tagged"},
		{"one_at_a_time", "ketama", len(bs), "weighted"},
		{"hsieh", "modula", len(bs), "plain"},
	}
	for _, c := range cases {
		t.Run(c.name(), func(t *testing.T) { runMemcacheCase(t, c, bs, keys) })
	}
}

func runMemcacheCase(t *testing.T, c poolCase, bs []backend, keys []string) {
	lines, servers := c.pool(bs)
	tag := ""
	if c.variant == "tagged" {
		tag = "{}"
	}
	p, err := hashring.New(hashring.Config{Hash: c.hash, HashTag: tag, Distribution: c.dist, Servers: servers})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if r, err := b.conn.mcCommand("flush_all"); err != nil || r != "OK" {
			t.Fatalf("flush_all %s: %q %v", b.srv.Addr, r, err)
		}
	}
	nc := startNutcracker(t, c.hash, c.dist, tag, false, lines)
	value := func(i int) string { return c.name() + "#" + strconv.Itoa(i) }
	for i, k := range keys {
		if err := nc.mcSet(k, value(i)); err != nil {
			t.Fatalf("set through nutcracker: %v", err)
		}
	}
	used := map[int]bool{}
	var bad []string
	for i, k := range keys {
		s := p.Pick([]byte(k))
		used[s] = true
		got, ok, err := bs[s].conn.mcGet(k)
		if err != nil {
			t.Fatalf("get from %s: %v", bs[s].srv.Addr, err)
		}
		if !ok || got != value(i) {
			bad = append(bad, fmt.Sprintf("\n  key %q: predicted server %d (%s), nutcracker used %v",
				k, s, servers[s].Name, locateMemcache(bs, k, value(i))))
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d of %d keys not on the predicted server:%s", len(bad), len(keys), bad[:min(len(bad), 8)])
	}
	// crc32 yields 15-bit hashes, so with ketama every key lands on the
	// server of the continuum's first points, in nutcracker too.
	if len(bs) > 1 && len(used) < 2 && c.hash != "crc32" {
		t.Errorf("all keys on one server; the check proves nothing")
	}
}

// locateMemcache returns the indexes of the servers that hold key with value.
func locateMemcache(bs []backend, key, value string) []int {
	var at []int
	for s, b := range bs {
		if got, ok, err := b.conn.mcGet(key); err == nil && ok && got == value {
			at = append(at, s)
		}
	}
	return at
}

// memcacheKeys returns 500 distinct keys the memcache text protocol allows:
// no spaces or control bytes, at most 250 bytes, bytes >= 0x80 included.
func memcacheKeys() []string {
	r := rand.New(rand.NewPCG(3, 5))
	seen := map[string]bool{}
	var keys []string
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	for i := 0; len(keys) < 500; i++ {
		switch i % 5 {
		case 0:
			add(fmt.Sprintf("key:%d", i))
		case 1:
			add(string(randomBytes(r, 1+r.IntN(3), 0x21, 0x100)))
		case 2:
			add(string(randomBytes(r, 4+r.IntN(40), 0x21, 0x100)))
		case 3:
			add(string(randomBytes(r, 100+r.IntN(150), 0x21, 0x7f)))
		case 4:
			add(fmt.Sprintf("{user%d}:session:%d", i%17, i))
		}
	}
	return keys
}
