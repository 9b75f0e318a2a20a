package metrics_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardproxy/shardproxy/metrics"
)

// deployDir is the repository's deploy/ folder, with the Prometheus
// configuration, the alerting rules and their tests.
const deployDir = "../deploy"

// needPromtool returns promtool's path, or skips the test.
func needPromtool(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (apt-get install prometheus; test.sh installs it)")
	}
	return bin
}

// promtool runs promtool with args in deploy/ and fails the test on any
// error, showing what promtool said.
func promtool(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(needPromtool(t), args...)
	cmd.Dir = deployDir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
}

// TestPrometheusConfig checks deploy/prometheus.yml, and the rule file it
// names, with promtool check config.
func TestPrometheusConfig(t *testing.T) {
	promtool(t, "check", "config", "prometheus.yml")
}

// TestAlertRules checks deploy/alerts.yml with promtool check rules and
// runs its unit tests, deploy/alerts_test.yml, with promtool test rules:
// each alert fires on its series and stays silent on the others.
func TestAlertRules(t *testing.T) {
	promtool(t, "check", "rules", "alerts.yml")
	promtool(t, "test", "rules", "alerts_test.yml")
}

// TestAlertsNameRealMetrics checks that every shardproxy_ metric the rules
// and their tests name is one the collector exposes, so that renaming a
// metric cannot leave an alert that never fires.
func TestAlertsNameRealMetrics(t *testing.T) {
	exposed := map[string]bool{}
	ch := make(chan *prometheus.Desc, 100)
	go func() {
		metrics.NewCollector(fakeSource{}).Describe(ch)
		close(ch)
	}()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range ch {
		m := fqName.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("no name in %s", d)
		}
		exposed[m[1]] = true
	}
	if !exposed["shardproxy_server_request_duration_seconds"] {
		t.Fatalf("the collector describes no latency histogram: %v", exposed)
	}
	for name := range exposed {
		if strings.HasSuffix(name, "_seconds") && strings.Contains(name, "duration") {
			exposed[name+"_bucket"], exposed[name+"_sum"], exposed[name+"_count"] = true, true, true
		}
	}
	// A metric's name, not the recording rules' (level:shardproxy_...:op).
	named := regexp.MustCompile(`(?:^|[^:a-z_])(shardproxy_[a-z_]+)`)
	for _, f := range []string{"alerts.yml", "alerts_test.yml"} {
		b, err := os.ReadFile(filepath.Join(deployDir, f))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, m := range named.FindAllStringSubmatch(string(b), -1) {
			n++
			if !exposed[m[1]] {
				t.Errorf("%s names %s, which shardproxy does not expose", f, m[1])
			}
		}
		if n == 0 {
			t.Errorf("%s names no shardproxy_ metric", f)
		}
	}
}
