package metrics_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/metrics"
	"github.com/shardproxy/shardproxy/proxy"
)

// freeListen is a free loopback host:port.
func freeListen(t *testing.T) string {
	return fmt.Sprintf("127.0.0.1:%d", testservers.FreePort(t, "127.0.0.1"))
}

// startProxy starts a proxy on the configuration and, on the same
// proxy, the metrics listener; both close when the test ends.
func startProxy(t *testing.T, yaml string) (*proxy.Proxy, string) {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	px, err := proxy.New(cfg, proxy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := px.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
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
	var b strings.Builder
	fmt.Fprintf(&b, "%s:\n  listen: %s\n  redis: true\n", name, listen)
	for _, e := range extra {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	b.WriteString("  servers:\n")
	for _, s := range servers {
		fmt.Fprintf(&b, "    - %s:1\n", s)
	}
	return b.String()
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

// redisConn is a raw RESP connection to the proxy.
type redisConn struct {
	t   *testing.T
	nc  net.Conn
	buf []byte
}

func dialRedis(t *testing.T, addr string) *redisConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &redisConn{t: t, nc: nc}
}

// do sends one request and returns its reply.
func (c *redisConn) do(args ...string) string {
	c.t.Helper()
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	c.nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.nc.Write(resp.AppendCommand(nil, bs...)); err != nil {
		c.t.Fatal(err)
	}
	return c.reply()
}

func (c *redisConn) reply() string {
	c.t.Helper()
	tmp := make([]byte, 4096)
	for {
		if n, err := resp.ReadReply(c.buf); err != nil {
			c.t.Fatal(err)
		} else if n > 0 {
			r := string(c.buf[:n])
			c.buf = c.buf[n:]
			return r
		}
		n, err := c.nc.Read(tmp)
		if err != nil {
			c.t.Fatal(err)
		}
		c.buf = append(c.buf, tmp[:n]...)
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
