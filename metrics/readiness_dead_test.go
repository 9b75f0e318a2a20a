package metrics_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/hashring"
	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// deadAddr is a loopback address nothing listens on, and its port.
func deadAddr(t *testing.T) (string, int) {
	port := testservers.FreePort(t, "127.0.0.1")
	return "127.0.0.1:" + strconv.Itoa(port), port
}

// keysOn returns n keys that a ketama fnv1a_64 pool of servers (by
// address, weight 1) places on servers[i].
func keysOn(t *testing.T, servers []string, i, n int) []string {
	hc := hashring.Config{Hash: "fnv1a_64", Distribution: "ketama"}
	for _, s := range servers {
		hc.Servers = append(hc.Servers, hashring.Server{Name: s, Weight: 1})
	}
	place, err := hashring.New(hc)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := 0; len(keys) < n; k++ {
		if key := "k" + strconv.Itoa(k); place.Pick([]byte(key)) == i {
			keys = append(keys, key)
		}
	}
	return keys
}

// readyz polls /readyz for up to d until its answer is code and body
// (body "" takes any), and returns how long that took; it fails the test
// with the last answer when it does not come.
func readyz(t *testing.T, maddr string, code int, body string, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		c, b := get(t, maddr, "/readyz")
		if c == code && (body == "" || b == body) {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("/readyz after %v: %d %q, want %d %q", d, c, b, code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stays checks that /readyz answers code for d.
func stays(t *testing.T, maddr string, code int, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if c, b := get(t, maddr, "/readyz"); c != code {
			t.Fatalf("/readyz: %d %q, want %d", c, b, code)
		}
	}
}

// TestReadyzDeadServers: a proxy whose pools' servers are all dead at
// start (a Redis pool, a memcache pool) is not ready, at once and while
// they stay dead; one request to each changes nothing. A pool with one
// dead server among live ones, whose requests all went to the dead one,
// is ready (its live servers were checked). Once the dead servers listen,
// the proxy is ready within seconds, without a request.
func TestReadyzDeadServers(t *testing.T) {
	r1, p1 := deadAddr(t)
	r2, p2 := deadAddr(t)
	m1, pm := deadAddr(t)
	a, b := testservers.Redis(t), testservers.Redis(t)
	d, pd := deadAddr(t)
	mixed := []string{a.Addr, b.Addr, d}
	lr, lm, lx := proxytest.FreeListen(t), proxytest.FreeListen(t), proxytest.FreeListen(t)
	ketama := []string{"hash: fnv1a_64", "distribution: ketama"}
	yaml := redisPool("red", lr, []string{r1, r2}, ketama...) +
		strings.Replace(redisPool("mem", lm, []string{m1}), "redis: true", "redis: false", 1) +
		redisPool("mix", lx, mixed, ketama...)
	started := time.Now()
	_, maddr := startProxy(t, yaml)
	code, body := get(t, maddr, "/readyz")
	t.Logf("/readyz %v after Start: %d %q", time.Since(started).Round(time.Millisecond), code, body)
	want := "red: not ready: no reachable server among 2 (0 ejected, 2 down)\n" +
		"mem: not ready: no reachable server among 1 (0 ejected, 1 down)\n" +
		"mix: ready\n"
	readyz(t, maddr, http.StatusServiceUnavailable, want, 2*time.Second)
	stays(t, maddr, http.StatusServiceUnavailable, 1500*time.Millisecond)

	// Requests fail; the pools stay not ready; mix stays ready though its
	// requests all went to its dead server.
	c := proxytest.Dial(t, lr)
	for _, k := range append(keysOn(t, []string{r1, r2}, 0, 2), keysOn(t, []string{r1, r2}, 1, 2)...) {
		if r := c.Do("GET", k); !strings.HasPrefix(r, "-ERR server unavailable") {
			t.Fatalf("red: GET %s: %q", k, r)
		}
	}
	x := proxytest.Dial(t, lx)
	for _, k := range keysOn(t, mixed, 2, 3) {
		if r := x.Do("GET", k); !strings.HasPrefix(r, "-ERR server unavailable") {
			t.Fatalf("mix: GET %s: %q", k, r)
		}
	}
	readyz(t, maddr, http.StatusServiceUnavailable, want, 2*time.Second)
	stays(t, maddr, http.StatusServiceUnavailable, time.Second)
	_, fams := scrape(t, maddr)
	for _, s := range []labels{{"pool": "red", "server": r1}, {"pool": "red", "server": r2}, {"pool": "mix", "server": d}} {
		if got := value(t, fams, "shardproxy_server_down", s); got != 1 {
			t.Errorf("%v: down %v, want 1", s, got)
		}
	}
	if got := value(t, fams, "shardproxy_server_down", labels{"pool": "mix", "server": a.Addr}); got != 0 {
		t.Errorf("mix's live server: down %v, want 0", got)
	}
	for pool, ready := range map[string]float64{"red": 0, "mem": 0, "mix": 1} {
		if got := value(t, fams, "shardproxy_pool_ready", labels{"pool": pool}); got != ready {
			t.Errorf("%s ready %v, want %v", pool, got, ready)
		}
	}

	// The dead servers come up: ready without a request.
	testservers.RedisOn(t, "127.0.0.1", p1)
	testservers.RedisOn(t, "127.0.0.1", p2)
	testservers.MemcachedOn(t, "127.0.0.1", pm)
	testservers.RedisOn(t, "127.0.0.1", pd)
	up := time.Now()
	took := readyz(t, maddr, http.StatusOK, "red: ready\nmem: ready\nmix: ready\n", 10*time.Second)
	t.Logf("ready %v after the servers came up", took.Round(time.Millisecond))
	_, fams = scrape(t, maddr)
	for _, s := range []labels{{"pool": "red", "server": r1}, {"pool": "red", "server": r2}, {"pool": "mem", "server": m1}, {"pool": "mix", "server": d}} {
		waitFor(t, fmt.Sprintf("%v not down", s), func() bool {
			_, fams = scrape(t, maddr)
			return value(t, fams, "shardproxy_server_down", s) == 0
		})
	}
	t.Logf("every server up %v after they came up", time.Since(up).Round(time.Millisecond))
}

// TestReadyzAllDeadAfterRequests: a pool whose servers served requests
// and then all died is not ready once its requests failed, and is ready
// again within seconds of the servers coming back, without a request.
func TestReadyzAllDeadAfterRequests(t *testing.T) {
	s1, s2 := testservers.Redis(t), testservers.Redis(t)
	servers := []string{s1.Addr, s2.Addr}
	l := proxytest.FreeListen(t)
	_, maddr := startProxy(t, redisPool("duo", l, servers, "hash: fnv1a_64", "distribution: ketama"))
	readyz(t, maddr, http.StatusOK, "duo: ready\n", 2*time.Second)
	c := proxytest.Dial(t, l)
	k0, k1 := keysOn(t, servers, 0, 1)[0], keysOn(t, servers, 1, 1)[0]
	for _, k := range []string{k0, k1} {
		if r := c.Do("SET", k, "v"); r != "+OK\r\n" {
			t.Fatalf("SET %s: %q", k, r)
		}
	}
	s1.Kill()
	s2.Kill()
	for _, k := range []string{k0, k1} {
		if r := c.Do("GET", k); !strings.HasPrefix(r, "-ERR server unavailable") {
			t.Fatalf("GET %s of a killed server: %q", k, r)
		}
	}
	readyz(t, maddr, http.StatusServiceUnavailable, "duo: not ready: no reachable server among 2 (0 ejected, 2 down)\n", 2*time.Second)
	stays(t, maddr, http.StatusServiceUnavailable, time.Second)
	s1.Restart()
	s2.Restart()
	took := readyz(t, maddr, http.StatusOK, "duo: ready\n", 10*time.Second)
	t.Logf("ready %v after the servers came back", took.Round(time.Millisecond))
	_, fams := scrape(t, maddr)
	for _, s := range servers {
		waitFor(t, s+" not down", func() bool {
			_, fams = scrape(t, maddr)
			return value(t, fams, "shardproxy_server_down", labels{"pool": "duo", "server": s}) == 0
		})
	}
}
