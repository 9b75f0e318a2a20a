package hashring_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/hashring"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// The proof of this package: real nutcracker 0.5.0 places keys on real
// servers, and every key must be found on the server Placement predicts.

// backend is one real server with a connection the test keeps open to it.
type backend struct {
	srv  *testservers.Server
	conn *wireConn
}

func startRedisBackends(t *testing.T, n int) []backend {
	t.Helper()
	bs := make([]backend, n)
	for i := range bs {
		bs[i].srv = testservers.Redis(t)
		c, err := dialWire(bs[i].srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		bs[i].conn = c
	}
	return bs
}

// poolCase is one nutcracker pool configuration to compare against.
type poolCase struct {
	hash, dist string
	n          int
	variant    string // plain, named, weighted or tagged
}

func (c poolCase) name() string { return fmt.Sprintf("%s/%s/%d/%s", c.dist, c.hash, c.n, c.variant) }

func redisCases() []poolCase {
	var cases []poolCase
	for _, dist := range []string{"ketama", "modula"} {
		for _, hash := range hashring.HashNames {
			cases = append(cases, poolCase{hash, dist, 1, "plain"})
			for _, n := range []int{3, 25, 50} {
				for _, v := range []string{"plain", "named", "weighted", "tagged"} {
					cases = append(cases, poolCase{hash, dist, n, v})
				}
			}
		}
	}
	return cases
}

// pool returns the nutcracker server lines and the matching Server list.
func (c poolCase) pool(bs []backend) (lines []string, servers []hashring.Server) {
	for i, b := range bs[:c.n] {
		w, name := 1, ""
		switch c.variant {
		case "weighted":
			w = []int{1, 2, 3, 5}[i%4]
		case "named":
			w, name = []int{1, 1, 2}[i%3], fmt.Sprintf("redis-shard-%02d", i)
		}
		line := fmt.Sprintf("%s:%d:%d", b.srv.Host, b.srv.Port, w)
		if name != "" {
			line += " " + name
		}
		lines = append(lines, line)
		servers = append(servers, hashring.Server{Name: hashring.ServerName(b.srv.Host, b.srv.Port, name), Weight: w})
	}
	return lines, servers
}

// nutcrackerYAML writes a one-pool nutcracker configuration.
// startNutcracker starts a real nutcracker with one pool over the server
// lines and returns a connection to it, closed when the test ends.
func startNutcracker(t *testing.T, hash, dist, tag string, redis bool, lines []string) *wireConn {
	t.Helper()
	listen := testservers.FreePort(t, "127.0.0.1")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(listen))
	testservers.Nutcracker(t, nutcrackerYAML(listen, hash, dist, tag, redis, lines), addr)
	nc, err := dialWire(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

func nutcrackerYAML(listen int, hash, dist, tag string, redis bool, lines []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "pool:\n  listen: 127.0.0.1:%d\n  hash: %s\n  distribution: %s\n", listen, hash, dist)
	fmt.Fprintf(&b, "  redis: %t\n  timeout: 5000\n  auto_eject_hosts: false\n", redis)
	if tag != "" {
		fmt.Fprintf(&b, "  hash_tag: %q\n", tag)
	}
	b.WriteString("  servers:\n")
	for _, l := range lines {
		fmt.Fprintf(&b, "   - %s\n", l)
	}
	return b.String()
}

func TestPlacementMatchesNutcrackerRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 50 redis-servers and hundreds of nutcrackers")
	}
	bs := startRedisBackends(t, 50)
	keys := redisKeys()
	for _, c := range redisCases() {
		t.Run(c.name(), func(t *testing.T) { runRedisCase(t, c, bs, keys) })
	}
}

func runRedisCase(t *testing.T, c poolCase, bs []backend, keys [][]byte) {
	lines, servers := c.pool(bs)
	tag := ""
	if c.variant == "tagged" {
		tag = "{}"
	}
	p, err := hashring.New(hashring.Config{Hash: c.hash, HashTag: tag, Distribution: c.dist, Servers: servers})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs[:c.n] {
		if r, _, err := b.conn.redisPipeline([][]byte{nil}, func(int, []byte) [][]byte {
			return [][]byte{[]byte("FLUSHALL")}
		}); err != nil || r[0] != "+OK" {
			t.Fatalf("FLUSHALL %s: %v %v", b.srv.Addr, r, err)
		}
	}
	nc := startNutcracker(t, c.hash, c.dist, tag, true, lines)
	value := func(i int) string { return c.name() + "#" + strconv.Itoa(i) }
	replies, _, err := nc.redisPipeline(keys, func(i int, k []byte) [][]byte {
		return [][]byte{[]byte("SET"), k, []byte(value(i))}
	})
	if err != nil {
		t.Fatalf("SET through nutcracker: %v", err)
	}
	for i, r := range replies {
		if r != "+OK" {
			t.Fatalf("SET %q through nutcracker: %s", keys[i], r)
		}
	}
	checkRedisPlacement(t, p, bs[:c.n], keys, value)
}

// checkRedisPlacement reads every key from the server p predicts and fails
// listing the first keys that are not there.
func checkRedisPlacement(t *testing.T, p *hashring.Placement, bs []backend, keys [][]byte, value func(int) string) {
	t.Helper()
	byServer := make([][]int, len(bs))
	for i, k := range keys {
		s := p.Pick(k)
		byServer[s] = append(byServer[s], i)
	}
	var bad []int
	for s, idx := range byServer {
		sub := make([][]byte, len(idx))
		for j, i := range idx {
			sub[j] = keys[i]
		}
		got, found, err := bs[s].conn.redisPipeline(sub, func(_ int, k []byte) [][]byte {
			return [][]byte{[]byte("GET"), k}
		})
		if err != nil {
			t.Fatalf("GET from %s: %v", bs[s].srv.Addr, err)
		}
		for j, i := range idx {
			if !found[j] || got[j] != value(i) {
				bad = append(bad, i)
			}
		}
	}
	if len(bad) == 0 {
		return
	}
	var b strings.Builder
	for _, i := range bad[:min(len(bad), 8)] {
		fmt.Fprintf(&b, "\n  key %q: predicted server %d, nutcracker used %v", keys[i], p.Pick(keys[i]), locate(bs, keys[i], value(i)))
	}
	t.Errorf("%d of %d keys not on the predicted server:%s", len(bad), len(keys), &b)
}

// locate returns the indexes of the servers that hold key with value.
func locate(bs []backend, key []byte, value string) []int {
	var at []int
	for s, b := range bs {
		got, found, err := b.conn.redisPipeline([][]byte{key}, func(_ int, k []byte) [][]byte {
			return [][]byte{[]byte("GET"), k}
		})
		if err == nil && found[0] && got[0] == value {
			at = append(at, s)
		}
	}
	return at
}

// redisKeys returns about 1000 distinct keys: plain, empty, short and
// binary (bytes >= 0x80, CR, LF, NUL), long, and tagged in many shapes.
func redisKeys() [][]byte {
	r := rand.New(rand.NewPCG(7, 11))
	seen := map[string]bool{}
	var keys [][]byte
	add := func(k []byte) {
		if !seen[string(k)] {
			seen[string(k)] = true
			keys = append(keys, k)
		}
	}
	add([]byte{})
	for i := 0; i < 300; i++ {
		add(fmt.Appendf(nil, "key:%d", i))
	}
	for i := 0; i < 150; i++ {
		add(randomBytes(r, 1+r.IntN(3), 0, 256))
	}
	for i := 0; i < 250; i++ {
		add(randomBytes(r, 4+r.IntN(40), 0, 256))
	}
	for i := 0; i < 60; i++ {
		add(append([]byte("long:"), randomBytes(r, 100+r.IntN(500), 0x21, 0x100)...))
	}
	// Tagged shapes: the tag (first verb) repeats across keys, the rest differs.
	shapes := []string{"{user%d}:profile:%d", "order:{%d}:items:%d", "{}x%d:%d", "x{%d:%d",
		"}%d{:%d", "a{b{%d}}c%d", "{\xff%d\x80}%d", "%d}{%d}"}
	for i := 0; i < 280; i++ {
		add(fmt.Appendf(nil, shapes[i%len(shapes)], i%20, i))
	}
	return keys
}

// randomBytes returns n bytes drawn from [lo, hi).
func randomBytes(r *rand.Rand, n, lo, hi int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(lo + r.IntN(hi-lo))
	}
	return b
}
