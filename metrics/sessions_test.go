package metrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// TestMetricsSessions checks the session gauges and refusals: a
// transaction and a blocking command leave one clean session connection
// open and none in use, and a session over server_sessions is refused and
// counted.
func TestMetricsSessions(t *testing.T) {
	r := testservers.Redis(t)
	listen := proxytest.FreeListen(t)
	_, maddr := startProxy(t, redisPool("alpha", listen, []string{r.Addr}, "server_sessions: 1"))
	c := proxytest.Dial(t, listen)
	for _, cmd := range [][]string{{"MULTI"}, {"SET", "k", "v"}, {"EXEC"}, {"BLPOP", "l", "0.05"}} {
		c.Do(cmd...)
	}
	srv := labels{"pool": "alpha", "server": r.Addr}
	_, fams := scrape(t, maddr)
	if open, inUse := value(t, fams, "shardproxy_server_sessions_open", srv), value(t, fams, "shardproxy_server_sessions_in_use", srv); open != 1 || inUse != 0 {
		t.Fatalf("after a transaction and a blocking command: sessions open %v, in use %v; want 1 and 0", open, inUse)
	}
	blocked := proxytest.Dial(t, listen)
	blocked.Write(proxytest.EncodeCommand(nil, "BLPOP", "l", "5"))
	waitFor(t, "the blocked client's session in use", func() bool {
		_, fams := scrape(t, maddr)
		return value(t, fams, "shardproxy_server_sessions_in_use", srv) == 1
	})
	start := time.Now()
	if got := c.Do("BLPOP", "l", "5"); !strings.HasPrefix(got, "-ERR too many sessions") {
		t.Fatalf("a session over server_sessions: %q", got)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusal took %v", d)
	}
	_, fams = scrape(t, maddr)
	if n := value(t, fams, "shardproxy_server_session_refusals_total", srv); n != 1 {
		t.Errorf("session refusals: %v, want 1", n)
	}
}

// TestMetricsSubscribers checks the subscriber gauges: two subscribed
// clients with three subscriptions, then none once they leave.
func TestMetricsSubscribers(t *testing.T) {
	r := testservers.Redis(t)
	listen := proxytest.FreeListen(t)
	_, maddr := startProxy(t, redisPool("alpha", listen, []string{r.Addr}))
	a, b := proxytest.Dial(t, listen), proxytest.Dial(t, listen)
	a.Do("SUBSCRIBE", "ch1")
	a.Do("PSUBSCRIBE", "p*")
	b.Do("SUBSCRIBE", "ch1")
	pool := labels{"pool": "alpha"}
	_, fams := scrape(t, maddr)
	if n, s := value(t, fams, "shardproxy_pool_subscribers", pool), value(t, fams, "shardproxy_pool_subscriptions", pool); n != 2 || s != 3 {
		t.Fatalf("subscribers %v, subscriptions %v; want 2 and 3", n, s)
	}
	a.Net.Close()
	b.Net.Close()
	waitFor(t, "no subscriber left", func() bool {
		_, fams := scrape(t, maddr)
		return value(t, fams, "shardproxy_pool_subscribers", pool) == 0 && value(t, fams, "shardproxy_pool_subscriptions", pool) == 0
	})
}
