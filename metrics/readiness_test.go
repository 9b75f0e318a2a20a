package metrics_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// ejecting are the lines of a pool that ejects its server at its first
// failure and keeps it out for a minute.
var ejecting = []string{"auto_eject_hosts: true", "server_failure_limit: 1", "server_retry_timeout: 60000"}

// TestMetricsKilledServer kills the only server of a rehash pool (beta)
// next to a pool that keeps serving (alpha): a request to it is answered
// with an error and counted in forward_error, the server is ejected (the
// ejection gauge, server_ejects, its last ejection's time), and /readyz
// turns 503 naming beta and why, while alpha stays ready.
func TestMetricsKilledServer(t *testing.T) {
	alpha, beta := testservers.Redis(t), testservers.Redis(t)
	la, lb := proxytest.FreeListen(t), proxytest.FreeListen(t)
	_, maddr := startProxy(t, redisPool("alpha", la, []string{alpha.Addr})+
		redisPool("beta", lb, []string{beta.Addr}, ejecting...))
	if code, body := get(t, maddr, "/readyz"); code != http.StatusOK || body != "alpha: ready\nbeta: ready\n" {
		t.Fatalf("/readyz before the kill: %d %q", code, body)
	}
	c := proxytest.Dial(t, lb)
	if r := c.Do("SET", "k", "v"); r != "+OK\r\n" {
		t.Fatalf("SET: %q", r)
	}
	beta.Kill()
	if r := c.Do("GET", "k"); !strings.HasPrefix(r, "-ERR ") {
		t.Fatalf("GET from a killed server: %q", r)
	}
	srv := labels{"pool": "beta", "server": beta.Addr}
	waitFor(t, "beta's server ejected", func() bool {
		_, fams := scrape(t, maddr)
		return value(t, fams, "shardproxy_server_ejected", srv) == 1
	})
	text, fams := scrape(t, maddr)
	promtoolCheck(t, text)
	pool := labels{"pool": "beta"}
	if got := value(t, fams, "shardproxy_pool_forward_error_total", pool); got != 1 {
		t.Errorf("beta's forward_error %v, want 1", got)
	}
	if got := value(t, fams, "shardproxy_pool_server_ejects_total", pool); got != 1 {
		t.Errorf("beta's server_ejects %v, want 1", got)
	}
	if got := value(t, fams, "shardproxy_server_eof_total", srv) + value(t, fams, "shardproxy_server_err_total", srv); got < 1 {
		t.Errorf("beta's server: server_eof + server_err %v, want at least 1", got)
	}
	if got := value(t, fams, "shardproxy_server_last_ejection_timestamp_seconds", srv); got <= 0 {
		t.Errorf("beta's server: last ejection at %v", got)
	}
	if got := value(t, fams, "shardproxy_pool_ready", pool); got != 0 {
		t.Errorf("beta ready %v, want 0", got)
	}
	if got := value(t, fams, "shardproxy_pool_ready", labels{"pool": "alpha"}); got != 1 {
		t.Errorf("alpha ready %v, want 1", got)
	}
	code, body := get(t, maddr, "/readyz")
	want := "alpha: ready\nbeta: not ready: no reachable server among 1 (1 ejected, 0 down)\n"
	if code != http.StatusServiceUnavailable || body != want {
		t.Errorf("/readyz after the kill: %d %q, want 503 %q", code, body, want)
	}
	if code, _ := get(t, maddr, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
}

// TestReadyzFailFast checks the readiness rule for eject_mode fail_fast:
// a pool whose only server is killed and ejected answers its keys at once
// ("server ejected"), as its policy chose, so it stays ready; the
// ejection gauge shows the server out.
func TestReadyzFailFast(t *testing.T) {
	gamma := testservers.Redis(t)
	lg := proxytest.FreeListen(t)
	_, maddr := startProxy(t, redisPool("gamma", lg, []string{gamma.Addr}, append(ejecting, "eject_mode: fail_fast")...))
	c := proxytest.Dial(t, lg)
	c.Do("PING")
	if r := c.Do("SET", "k", "v"); r != "+OK\r\n" {
		t.Fatalf("SET: %q", r)
	}
	gamma.Kill()
	c.Do("GET", "k")
	srv := labels{"pool": "gamma", "server": gamma.Addr}
	waitFor(t, "gamma's server ejected", func() bool {
		_, fams := scrape(t, maddr)
		return value(t, fams, "shardproxy_server_ejected", srv) == 1
	})
	if r := c.Do("GET", "k"); !strings.HasPrefix(r, "-ERR server ejected") {
		t.Errorf("GET of a fail_fast pool's ejected server: %q", r)
	}
	if code, body := get(t, maddr, "/readyz"); code != http.StatusOK || body != "gamma: ready\n" {
		t.Errorf("/readyz: %d %q, want 200 for a fail_fast pool whose server is ejected", code, body)
	}
	_, fams := scrape(t, maddr)
	if got := value(t, fams, "shardproxy_pool_ready", labels{"pool": "gamma"}); got != 1 {
		t.Errorf("gamma ready %v, want 1", got)
	}
}

// TestReadyzServerDown checks that a pool without auto_eject_hosts whose
// only server is down is not ready once a request found it down.
func TestReadyzServerDown(t *testing.T) {
	delta := testservers.Redis(t)
	ld := proxytest.FreeListen(t)
	_, maddr := startProxy(t, redisPool("delta", ld, []string{delta.Addr}))
	delta.Kill()
	c := proxytest.Dial(t, ld)
	if r := c.Do("GET", "k"); !strings.HasPrefix(r, "-ERR server unavailable") {
		t.Fatalf("GET from a killed server: %q", r)
	}
	code, body := get(t, maddr, "/readyz")
	want := "delta: not ready: no reachable server among 1 (0 ejected, 1 down)\n"
	if code != http.StatusServiceUnavailable || body != want {
		t.Errorf("/readyz: %d %q, want 503 %q", code, body, want)
	}
}
