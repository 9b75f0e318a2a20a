package metrics_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// readyzOf polls a path of the metrics listener for up to 10 s until it
// answers code and body, failing the test with the last answer.
func readyzOf(t *testing.T, maddr, path string, code int, body string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, b := get(t, maddr, path)
		if c == code && b == body {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d %q, want %d %q", path, c, b, code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReadyzPerPool checks /readyz/<pool> with two pools over real
// redis-servers, one of which goes down (no auto_eject_hosts): the ready
// pool answers 200 while /readyz, for all, answers 503; the other 503 with
// the reason; an unknown pool 404; and once its server is back and
// answers, the pool is ready again.
func TestReadyzPerPool(t *testing.T) {
	alpha, beta := testservers.Redis(t), testservers.Redis(t)
	la, lb := proxytest.FreeListen(t), proxytest.FreeListen(t)
	_, maddr := startProxy(t, redisPool("alpha", la, []string{alpha.Addr})+redisPool("beta", lb, []string{beta.Addr}))
	readyzOf(t, maddr, "/readyz/alpha", http.StatusOK, "alpha: ready\n")
	readyzOf(t, maddr, "/readyz/beta", http.StatusOK, "beta: ready\n")

	beta.Kill()
	c := proxytest.Dial(t, lb)
	if r := c.Do("GET", "k"); !strings.HasPrefix(r, "-ERR server unavailable") {
		t.Fatalf("GET from a killed server: %q", r)
	}
	notReady := "beta: not ready: no reachable server among 1 (0 ejected, 1 down)\n"
	for _, c := range []struct {
		path string
		code int
		body string
	}{
		{"/readyz", http.StatusServiceUnavailable, "alpha: ready\n" + notReady},
		{"/readyz/alpha", http.StatusOK, "alpha: ready\n"},
		{"/readyz/beta", http.StatusServiceUnavailable, notReady},
		{"/readyz/gamma", http.StatusNotFound, "no pool \"gamma\"\n"},
		{"/readyz/", http.StatusNotFound, "no pool \"\"\n"},
		{"/readyz/alpha/x", http.StatusNotFound, "no pool \"alpha/x\"\n"},
	} {
		if code, body := get(t, maddr, c.path); code != c.code || body != c.body {
			t.Errorf("%s: %d %q, want %d %q", c.path, code, body, c.code, c.body)
		}
	}
	_, fams := scrape(t, maddr)
	if got := value(t, fams, "shardproxy_server_down", labels{"pool": "beta", "server": beta.Addr}); got != 1 {
		t.Errorf("beta's server down %v, want 1", got)
	}
	if got := value(t, fams, "shardproxy_server_ejected", labels{"pool": "beta", "server": beta.Addr}); got != 0 {
		t.Errorf("beta's server ejected %v, want 0 (no auto_eject_hosts)", got)
	}

	beta.Restart()
	waitFor(t, "beta's server answering through the proxy", func() bool {
		r, err := c.TryDo(2*time.Second, "GET", "k")
		return err == nil && r.Raw == "$-1\r\n"
	})
	readyzOf(t, maddr, "/readyz/beta", http.StatusOK, "beta: ready\n")
	readyzOf(t, maddr, "/readyz", http.StatusOK, "alpha: ready\nbeta: ready\n")
}
