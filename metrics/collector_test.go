package metrics_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shardproxy/shardproxy/metrics"
	"github.com/shardproxy/shardproxy/stats"
)

// fakeSource returns a fixed snapshot.
type fakeSource struct{ snap stats.Snapshot }

func (f fakeSource) Snapshot() stats.Snapshot { return f.snap }

// sampleSnapshot has two pools, one of them with two servers, commands and
// latencies, and a failed reload.
func sampleSnapshot() stats.Snapshot {
	bounds := []time.Duration{time.Millisecond, 10 * time.Millisecond}
	return stats.Snapshot{
		Time:    time.Now(),
		Version: "9.8.7",
		Config: stats.Config{Digest: "abc123", Reloads: 2, ReloadFailures: 1,
			LastReloadAt: time.Now(), LastReloadFailed: true, LastReloadError: "bad file"},
		Pools: []stats.Pool{
			{Name: "alpha", Redis: true, Listening: true, Requests: 10, MigrationPending: 2, KeysMigrated: 40, MigrationErrors: 1,
				Commands: []stats.Command{
					{Name: "get", Requests: 7, Errors: 1,
						Latency: stats.Latency{Bounds: bounds, Buckets: []uint64{5, 1, 1}, Sum: 30 * time.Millisecond}},
					{Name: "unknown", Requests: 3, Errors: 3,
						Latency: stats.Latency{Bounds: bounds, Buckets: []uint64{3, 0, 0}, Sum: 600 * time.Microsecond}}},
				Servers: []stats.Server{
					{Name: "a", InRing: true, Requests: 4, Responses: 4,
						Latency: stats.Latency{Bounds: bounds, Buckets: []uint64{1, 2, 1}, Sum: 20 * time.Millisecond}},
					{Name: "b", InRing: true, Ejected: true, ServerEjectedAt: 1_700_000_000_000_000,
						Latency: stats.Latency{Bounds: bounds, Buckets: []uint64{0, 0, 0}}},
				}},
			{Name: "beta", Servers: []stats.Server{{Name: "c"}}},
		},
	}
}

// TestCollectorConsistent gathers the collector through a pedantic
// registry, which checks every metric against the descriptions the
// collector gives, and lints the result as promtool does.
func TestCollectorConsistent(t *testing.T) {
	c := metrics.NewCollector(fakeSource{sampleSnapshot()})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestCollectorValues checks the values of the sample snapshot as
// exposed: histogram buckets made cumulative, the ejection time in
// seconds, the reload state and readiness.
func TestCollectorValues(t *testing.T) {
	c := metrics.NewCollector(fakeSource{sampleSnapshot()})
	want := `
# HELP shardproxy_server_request_duration_seconds Time from a request's enqueueing for the server to its reply; failed requests are not in it.
# TYPE shardproxy_server_request_duration_seconds histogram
shardproxy_server_request_duration_seconds_bucket{pool="alpha",server="a",le="0.001"} 1
shardproxy_server_request_duration_seconds_bucket{pool="alpha",server="a",le="0.01"} 3
shardproxy_server_request_duration_seconds_bucket{pool="alpha",server="a",le="+Inf"} 4
shardproxy_server_request_duration_seconds_sum{pool="alpha",server="a"} 0.02
shardproxy_server_request_duration_seconds_count{pool="alpha",server="a"} 4
shardproxy_server_request_duration_seconds_bucket{pool="alpha",server="b",le="0.001"} 0
shardproxy_server_request_duration_seconds_bucket{pool="alpha",server="b",le="0.01"} 0
shardproxy_server_request_duration_seconds_bucket{pool="alpha",server="b",le="+Inf"} 0
shardproxy_server_request_duration_seconds_sum{pool="alpha",server="b"} 0
shardproxy_server_request_duration_seconds_count{pool="alpha",server="b"} 0
shardproxy_server_request_duration_seconds_bucket{pool="beta",server="c",le="+Inf"} 0
shardproxy_server_request_duration_seconds_sum{pool="beta",server="c"} 0
shardproxy_server_request_duration_seconds_count{pool="beta",server="c"} 0
# HELP shardproxy_server_ejected 1 while the server is ejected (auto_eject_hosts), else 0.
# TYPE shardproxy_server_ejected gauge
shardproxy_server_ejected{pool="alpha",server="a"} 0
shardproxy_server_ejected{pool="alpha",server="b"} 1
shardproxy_server_ejected{pool="beta",server="c"} 0
# HELP shardproxy_server_last_ejection_timestamp_seconds When the server was last ejected, in seconds since the epoch; 0 when never (server_ejected_at).
# TYPE shardproxy_server_last_ejection_timestamp_seconds gauge
shardproxy_server_last_ejection_timestamp_seconds{pool="alpha",server="a"} 0
shardproxy_server_last_ejection_timestamp_seconds{pool="alpha",server="b"} 1.7e+09
shardproxy_server_last_ejection_timestamp_seconds{pool="beta",server="c"} 0
# HELP shardproxy_command_requests_total Requests per command; command is a name of the proxy's command table, "unknown" for any other.
# TYPE shardproxy_command_requests_total counter
shardproxy_command_requests_total{command="get",pool="alpha"} 7
shardproxy_command_requests_total{command="unknown",pool="alpha"} 3
# HELP shardproxy_command_errors_total Requests per command answered by an error: the server's, the proxy's own, or a forwarding error.
# TYPE shardproxy_command_errors_total counter
shardproxy_command_errors_total{command="get",pool="alpha"} 1
shardproxy_command_errors_total{command="unknown",pool="alpha"} 3
# HELP shardproxy_command_duration_seconds Time per command from the read that brought a request to the write of its reply, as the client sees it.
# TYPE shardproxy_command_duration_seconds histogram
shardproxy_command_duration_seconds_bucket{command="get",pool="alpha",le="0.001"} 5
shardproxy_command_duration_seconds_bucket{command="get",pool="alpha",le="0.01"} 6
shardproxy_command_duration_seconds_bucket{command="get",pool="alpha",le="+Inf"} 7
shardproxy_command_duration_seconds_sum{command="get",pool="alpha"} 0.03
shardproxy_command_duration_seconds_count{command="get",pool="alpha"} 7
shardproxy_command_duration_seconds_bucket{command="unknown",pool="alpha",le="0.001"} 3
shardproxy_command_duration_seconds_bucket{command="unknown",pool="alpha",le="0.01"} 3
shardproxy_command_duration_seconds_bucket{command="unknown",pool="alpha",le="+Inf"} 3
shardproxy_command_duration_seconds_sum{command="unknown",pool="alpha"} 0.0006
shardproxy_command_duration_seconds_count{command="unknown",pool="alpha"} 3
# HELP shardproxy_pool_migration_pending Old owners a migration (migrate_from) has still to scan; 0 when complete or none (migration_pending).
# TYPE shardproxy_pool_migration_pending gauge
shardproxy_pool_migration_pending{pool="alpha"} 2
shardproxy_pool_migration_pending{pool="beta"} 0
# HELP shardproxy_pool_keys_migrated_total Keys a migration moved, on access and in the background (keys_migrated).
# TYPE shardproxy_pool_keys_migrated_total counter
shardproxy_pool_keys_migrated_total{pool="alpha"} 40
shardproxy_pool_keys_migrated_total{pool="beta"} 0
# HELP shardproxy_pool_migration_errors_total MIGRATEs and SCANs of a migration that failed (migration_errors).
# TYPE shardproxy_pool_migration_errors_total counter
shardproxy_pool_migration_errors_total{pool="alpha"} 1
shardproxy_pool_migration_errors_total{pool="beta"} 0
# HELP shardproxy_pool_ready 1 when the pool is ready (see /readyz), else 0.
# TYPE shardproxy_pool_ready gauge
shardproxy_pool_ready{pool="alpha"} 1
shardproxy_pool_ready{pool="beta"} 0
# HELP shardproxy_config_last_reload_successful 0 when the last configuration reload tried was refused, else 1.
# TYPE shardproxy_config_last_reload_successful gauge
shardproxy_config_last_reload_successful 0
# HELP shardproxy_config_reload_failures_total Configuration reloads refused; a refused reload changes nothing.
# TYPE shardproxy_config_reload_failures_total counter
shardproxy_config_reload_failures_total 1
# HELP shardproxy_config_info The running configuration file's digest, as the label digest; the value is 1.
# TYPE shardproxy_config_info gauge
shardproxy_config_info{digest="abc123"} 1
# HELP shardproxy_build_info shardproxy's version, as the label version; the value is 1.
# TYPE shardproxy_build_info gauge
shardproxy_build_info{version="9.8.7"} 1
`
	names := []string{"shardproxy_server_request_duration_seconds", "shardproxy_server_ejected",
		"shardproxy_server_last_ejection_timestamp_seconds", "shardproxy_command_requests_total",
		"shardproxy_command_errors_total", "shardproxy_command_duration_seconds",
		"shardproxy_pool_ready", "shardproxy_pool_migration_pending", "shardproxy_pool_keys_migrated_total",
		"shardproxy_pool_migration_errors_total", "shardproxy_config_last_reload_successful",
		"shardproxy_config_reload_failures_total", "shardproxy_config_info", "shardproxy_build_info"}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
}

// TestReadyzBody checks /readyz's status and body on a snapshot with a
// pool that is not ready (beta: not listening).
func TestReadyzBody(t *testing.T) {
	h := metrics.Handler(fakeSource{sampleSnapshot()})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if want := "alpha: ready\nbeta: not ready: not listening\n"; rec.Code != http.StatusServiceUnavailable || rec.Body.String() != want {
		t.Errorf("/readyz: %d %q, want 503 %q", rec.Code, rec.Body.String(), want)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/nothing", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("/nothing: %d", rec.Code)
	}
}

// TestCloseEndsEverything checks that Close stops the listener and that
// no goroutine of the server outlives it, with a client connection still
// open (kept alive) when it is called.
func TestCloseEndsEverything(t *testing.T) {
	base := runtime.NumGoroutine()
	ms, err := metrics.Listen("127.0.0.1:0", fakeSource{sampleSnapshot()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := ms.Addr().String()
	tr := &http.Transport{}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	res, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close() // the connection stays open, idle
	if err := ms.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	tr.CloseIdleConnections()
	if nc, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		nc.Close()
		t.Error("the metrics listener still accepts after Close")
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Close, %d before Listen:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestListenTaken checks that Listen on an address in use fails and says
// so.
func TestListenTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if ms, err := metrics.Listen(ln.Addr().String(), fakeSource{}, nil); err == nil {
		ms.Close()
		t.Fatal("Listen on a taken address succeeded")
	} else if !strings.Contains(err.Error(), "metrics") || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("error %q", err)
	}
}
