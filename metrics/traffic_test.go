package metrics_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/proxy"
	"github.com/shardproxy/shardproxy/stats"
)

// evilCommand is a command name written to break out of a label value. It
// must appear nowhere in a scrape: client input never becomes a label.
const evilCommand = `evil{label="x"}`

// TestMetricsAgreeWithTraffic sends known traffic through a RESP pool of
// three servers (N GETs, M SETs, an MGET over several servers, a PING, an
// unknown command named to break a label) and checks that the scraped
// counters agree with it: requests per command, per server requests,
// responses and latency histogram counts, fragments, no forward_error, no
// ejection; that the scrape passes promtool check metrics; and that the
// unknown command's name is nowhere in it.
func TestMetricsAgreeWithTraffic(t *testing.T) {
	var addrs []string
	for range 3 {
		addrs = append(addrs, testservers.Redis(t).Addr)
	}
	listen := proxytest.FreeListen(t)
	px, maddr := startProxy(t, redisPool("alpha", listen, addrs))
	c := proxytest.Dial(t, listen)
	const gets, sets = 7, 5
	for i := range sets {
		if r := c.Do("SET", fmt.Sprintf("k%d", i), "v"); r != "+OK\r\n" {
			t.Fatalf("SET: %q", r)
		}
	}
	for i := range gets {
		c.Do("GET", fmt.Sprintf("k%d", i))
	}
	// Keys that differ in their first bytes: fnv1a_64 (32-bit in
	// nutcracker) puts keys that differ only at their end next to each
	// other on the continuum, often all on one server.
	mget := []string{"MGET"}
	for i := range 12 {
		mget = append(mget, fmt.Sprintf("%d-metrics-test-key", i))
	}
	if r := c.Do(mget...); !strings.HasPrefix(r, "*12\r\n") {
		t.Fatalf("MGET: %q", r)
	}
	c.Do("PING")
	if r := c.Do(evilCommand, "arg"); !strings.HasPrefix(r, "-ERR unknown command") {
		t.Fatalf("%s: %q", evilCommand, r)
	}

	text, fams := scrape(t, maddr)
	promtoolCheck(t, text)
	if strings.Contains(text, "evil") || strings.Contains(text, `label=\"x\"`) {
		t.Errorf("the client's command name is in the scrape:\n%s", text)
	}
	checkLabelValues(t, fams, px.Snapshot())

	pool := labels{"pool": "alpha"}
	for _, c := range []struct {
		command string
		want    float64
	}{{"get", gets}, {"set", sets}, {"mget", 1}, {"ping", 1}, {"unknown", 1}} {
		if got := value(t, fams, "shardproxy_command_requests_total", labels{"pool": "alpha", "command": c.command}); got != c.want {
			t.Errorf("requests of %s: %v, want %v", c.command, got, c.want)
		}
	}
	if n := len(fams["shardproxy_command_requests_total"].GetMetric()); n != 5 {
		t.Errorf("%d command series, want 5 (get set mget ping unknown)", n)
	}
	total := float64(gets + sets + 1 + 1 + 1)
	if got := value(t, fams, "shardproxy_pool_requests_total", pool); got != total {
		t.Errorf("pool requests %v, want %v", got, total)
	}
	frags := value(t, fams, "shardproxy_pool_fragments_total", pool)
	if frags < 2 {
		t.Fatalf("MGET of 12 keys over 3 servers made %v fragments", frags)
	}
	if got := value(t, fams, "shardproxy_pool_forward_error_total", pool); got != 0 {
		t.Errorf("forward_error %v, want 0", got)
	}
	var requests float64
	for _, a := range addrs {
		srv := labels{"pool": "alpha", "server": a}
		req := value(t, fams, "shardproxy_server_requests_total", srv)
		requests += req
		if got := value(t, fams, "shardproxy_server_responses_total", srv); got != req {
			t.Errorf("%s: %v responses to %v requests", a, got, req)
		}
		if got := histogramCount(t, fams, "shardproxy_server_request_duration_seconds", srv); float64(got) != req {
			t.Errorf("%s: latency histogram counts %d replies, the server %v responses", a, got, req)
		}
		if got := value(t, fams, "shardproxy_server_ejected", srv); got != 0 {
			t.Errorf("%s: ejected %v", a, got)
		}
		if b := value(t, fams, "shardproxy_server_request_bytes_total", srv); req > 0 && b <= 0 {
			t.Errorf("%s: %v requests of %v bytes", a, req, b)
		}
	}
	if want := float64(gets+sets) + frags; requests != want {
		t.Errorf("servers' requests add up to %v, want %d GETs + %d SETs + %v MGET fragments", requests, gets, sets, frags)
	}
	if got := value(t, fams, "shardproxy_pool_ready", pool); got != 1 {
		t.Errorf("pool ready %v", got)
	}
	if code, body := get(t, maddr, "/healthz"); code != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get(t, maddr, "/readyz"); code != http.StatusOK || body != "alpha: ready\n" {
		t.Errorf("/readyz: %d %q", code, body)
	}
}

// histogramCount returns a histogram's sample count, checking that its
// buckets are cumulative and end at the count.
func histogramCount(t *testing.T, fams map[string]*dto.MetricFamily, name string, want labels) uint64 {
	t.Helper()
	m := find(fams, name, want)
	if m == nil || m.Histogram == nil {
		t.Fatalf("no histogram %s%v", name, want)
	}
	h := m.Histogram
	var prev uint64
	for _, b := range h.GetBucket() {
		if b.GetCumulativeCount() < prev {
			t.Errorf("%s%v: bucket le=%v counts %d, less than the bucket before", name, want, b.GetUpperBound(), b.GetCumulativeCount())
		}
		prev = b.GetCumulativeCount()
	}
	if prev > h.GetSampleCount() {
		t.Errorf("%s%v: buckets count %d, the histogram %d", name, want, prev, h.GetSampleCount())
	}
	return h.GetSampleCount()
}

// checkLabelValues checks that every label value of a shardproxy_ metric
// comes from the configuration or the proxy: a pool or server name, a
// command of the proxy's own (those this test sends, or unknown), the
// configuration's digest, the proxy's version.
func checkLabelValues(t *testing.T, fams map[string]*dto.MetricFamily, snap stats.Snapshot) {
	t.Helper()
	allowed := map[string]map[string]bool{
		"pool": {}, "server": {}, "digest": {snap.Config.Digest: true}, "version": {proxy.Version: true},
		"command": {"get": true, "set": true, "mget": true, "ping": true, "unknown": true, "version": true},
		"le":      nil, // a histogram's bucket bounds
	}
	for _, p := range snap.Pools {
		allowed["pool"][p.Name] = true
		for _, s := range p.Servers {
			allowed["server"][s.Name] = true
		}
	}
	for name, f := range fams {
		if !strings.HasPrefix(name, "shardproxy_") {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				vals, known := allowed[l.GetName()]
				if !known {
					t.Errorf("%s: unexpected label %s=%q", name, l.GetName(), l.GetValue())
				} else if vals != nil && !vals[l.GetValue()] {
					t.Errorf("%s: label %s=%q comes from neither the configuration nor the proxy", name, l.GetName(), l.GetValue())
				}
			}
		}
	}
}
