package metrics_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/metrics"
	"github.com/shardproxy/shardproxy/proxy"
)

// TestMetricsMemcache checks the command counters of a memcache pool:
// memcache's own command names, a multi-key get counted once, a local
// version, an incr refused by memcached and an unknown command (named to
// break a label) counted as errors, the unknown one as unknown and shown
// nowhere; the latency histograms count every request.
func TestMetricsMemcache(t *testing.T) {
	var addrs []string
	for range 2 {
		addrs = append(addrs, testservers.Memcached(t).Addr)
	}
	listen := proxytest.FreeListen(t)
	yaml := fmt.Sprintf("mc:\n  listen: %s\n  servers:\n    - %s:1\n    - %s:1\n", listen, addrs[0], addrs[1])
	_, maddr := startProxy(t, yaml)
	nc, err := net.DialTimeout("tcp", listen, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(nc)
	line := func(req, want string) {
		t.Helper()
		fmt.Fprint(nc, req)
		got, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(got, want) {
			t.Fatalf("%q: %q %v, want %q", req, got, err, want)
		}
	}
	for i := range 2 {
		line(fmt.Sprintf("set k%d 0 0 1\r\nv\r\n", i), "STORED")
	}
	for range 3 {
		line("get nokey\r\n", "END")
	}
	fmt.Fprint(nc, "get k0 k1 nokey\r\n")
	for _, want := range []string{"VALUE k0", "v", "VALUE k1", "v", "END"} {
		if got, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(got, want) {
			t.Fatalf("get k0 k1 nokey: %q %v, want %q", got, err, want)
		}
	}
	line("version\r\n", "VERSION ")
	line("incr k0 1\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value")
	line(evilCommand+" x\r\n", "ERROR")

	text, fams := scrape(t, maddr)
	promtoolCheck(t, text)
	if strings.Contains(text, "evil") {
		t.Errorf("the client's command name is in the scrape:\n%s", text)
	}
	for _, c := range []struct {
		command      string
		want, errors float64
	}{{"get", 4, 0}, {"set", 2, 0}, {"incr", 1, 1}, {"version", 1, 0}, {"unknown", 1, 1}} {
		cmd := labels{"pool": "mc", "command": c.command}
		if got := value(t, fams, "shardproxy_command_requests_total", cmd); got != c.want {
			t.Errorf("requests of %s: %v, want %v", c.command, got, c.want)
		}
		if got := value(t, fams, "shardproxy_command_errors_total", cmd); got != c.errors {
			t.Errorf("errors of %s: %v, want %v", c.command, got, c.errors)
		}
		if got := histogramCount(t, fams, "shardproxy_command_duration_seconds", cmd); float64(got) != c.want {
			t.Errorf("latency of %s counts %d requests, want %v", c.command, got, c.want)
		}
	}
	var responses float64
	for _, a := range addrs {
		srv := labels{"pool": "mc", "server": a}
		n := value(t, fams, "shardproxy_server_responses_total", srv)
		responses += n
		if got := histogramCount(t, fams, "shardproxy_server_request_duration_seconds", srv); float64(got) != n {
			t.Errorf("%s: latency histogram counts %d replies, the server %v responses", a, got, n)
		}
	}
	frags := value(t, fams, "shardproxy_pool_fragments_total", labels{"pool": "mc"})
	if want := 2 + 3 + 1 + max(frags, 1); responses != want { // sets, gets, incr, the multi-key get
		t.Errorf("servers' responses add up to %v, want %v", responses, want)
	}
}

// TestMetricsReload checks the reload metrics: a refused reload counts a
// failure and sets last_reload_successful to 0, keeping the digest; an
// applied one counts a reload, sets it back to 1 and shows the new file's
// digest.
func TestMetricsReload(t *testing.T) {
	srv := testservers.Redis(t)
	path := filepath.Join(t.TempDir(), "shardproxy.yml")
	listen := proxytest.FreeListen(t)
	write := func(body string) {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(redisPool("alpha", listen, []string{srv.Addr}))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	px, err := proxy.New(cfg, proxy.Options{ConfigPath: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := px.Start(); err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	ms, err := metrics.Listen("127.0.0.1:0", px, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	maddr := ms.Addr().String()
	check := func(when string, reloads, failures, successful float64, digest string) {
		t.Helper()
		text, fams := scrape(t, maddr)
		promtoolCheck(t, text)
		for _, c := range []struct {
			name string
			want float64
		}{
			{"shardproxy_config_reloads_total", reloads},
			{"shardproxy_config_reload_failures_total", failures},
			{"shardproxy_config_last_reload_successful", successful},
			{"shardproxy_config_info", 1},
		} {
			if got := value(t, fams, c.name, nil); got != c.want {
				t.Errorf("%s: %s %v, want %v", when, c.name, got, c.want)
			}
		}
		if got := find(fams, "shardproxy_config_info", labels{"digest": digest}); got == nil {
			t.Errorf("%s: no shardproxy_config_info{digest=%q}", when, digest)
		}
		at := value(t, fams, "shardproxy_config_last_reload_timestamp_seconds", nil)
		if (reloads+failures == 0) != (at == 0) {
			t.Errorf("%s: last reload at %v", when, at)
		}
	}
	check("at start", 0, 0, 1, cfg.Digest)
	write("alpha:\n  listen: [\n")
	if err := px.Reload(); err == nil {
		t.Fatal("a broken file reloaded")
	}
	check("after a refused reload", 0, 1, 0, cfg.Digest)
	write(redisPool("alpha", listen, []string{srv.Addr}, "hash: md5"))
	next, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := px.Reload(); err != nil {
		t.Fatal(err)
	}
	check("after an applied reload", 1, 1, 1, next.Digest)
}
