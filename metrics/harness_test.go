package metrics_test

import (
	"bytes"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/metrics"
	"github.com/shardproxy/shardproxy/proxy"
)

// startProxy starts a proxy on the configuration and, on the same
// proxy, the metrics listener; both close when the test ends.
func startProxy(t *testing.T, yaml string) (*proxy.Proxy, string) {
	t.Helper()
	px := proxytest.StartProxy(t, yaml)
	ms, err := metrics.Listen("127.0.0.1:0", px, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	return px, ms.Addr().String()
}

// redisPool is a pool's YAML: redis: true unless memcache, the servers'
// addresses with weight 1, and the extra lines (already indented).
func redisPool(name, listen string, servers []string, extra ...string) string {
	lines := make([]string, len(servers))
	for i, s := range servers {
		lines[i] = s + ":1"
	}
	return proxytest.Pool{Keys: extra, Servers: lines}.YAML(name, listen)
}

// get fetches a path of the metrics listener and returns the status and
// body.
func get(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := c.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

// scrape fetches /metrics and parses it.
func scrape(t *testing.T, addr string) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	code, text := get(t, addr, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: status %d\n%s", code, text)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, text)
	}
	return text, fams
}

// labels is a metric's label set.
type labels map[string]string

// find returns the metric of the family name whose labels include want.
func find(fams map[string]*dto.MetricFamily, name string, want labels) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
	for _, m := range f.GetMetric() {
		have := labels{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			if have[k] != v {
				match = false
			}
		}
		if match {
			return m
		}
	}
	return nil
}

// value returns the value of a counter or gauge; it fails the test when
// there is no such metric.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want labels) float64 {
	t.Helper()
	m := find(fams, name, want)
	switch {
	case m == nil:
		t.Fatalf("no metric %s%v", name, want)
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("%s%v is neither a counter nor a gauge", name, want)
	return 0
}

// promtoolCheck runs promtool check metrics on a scrape and fails on any
// complaint; without promtool it says so and returns.
func promtoolCheck(t *testing.T, text string) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool is not installed (apt-get install prometheus): the scrape is not linted by it")
		return
	}
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
