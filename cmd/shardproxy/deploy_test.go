//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

// deployDir holds what an operator installs (../../deploy from here).
const deployDir = "../../deploy"

// lookTool finds an administration tool, which may live in an sbin
// directory outside a user's PATH, or skips the test.
func lookTool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p
		}
	}
	t.Skipf("skipped: %s is not installed", name)
	return ""
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// unitKeys reads a unit file's settings: each key's values, in order.
func unitKeys(unit string) map[string][]string {
	keys := map[string][]string{}
	for line := range strings.Lines(unit) {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "[") {
			keys[k] = append(keys[k], v)
		}
	}
	return keys
}

// readUnit reads deploy/shardproxy.service.
func readUnit(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, "shardproxy.service"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// olderSystemdLines is what systemd-analyze verify of systemd before 253
// says about the unit (the unit's path, then these): it does not know
// Type=notify-reload and ReloadSignal=.
var olderSystemdLines = []string{
	"Failed to parse service type, ignoring: notify-reload",
	"Unknown key 'ReloadSignal' in section [Service], ignoring.",
}

// TestSystemdUnit checks deploy/shardproxy.service: what it must say (the
// proxy in the foreground, ready and reloaded by sd_notify, a refused
// reload failing `systemctl reload` through shardproxy reload, a missing
// configuration failing the unit, the stats and metrics listeners on
// loopback, a user of its own, restart on failure), and that
// systemd-analyze verify finds nothing to say about it, with the binary's
// path pointing at a built binary. systemd before 253 knows neither
// Type=notify-reload nor ReloadSignal=: there verify must say exactly that
// and nothing else, and find nothing to say about the unit with the
// drop-in the unit's comment gives for it (Type=notify).
func TestSystemdUnit(t *testing.T) {
	unit := readUnit(t)
	keys := unitKeys(unit)
	for key, want := range map[string]string{
		"Type":             "notify-reload",
		"ReloadSignal":     "SIGUSR1",
		"AssertPathExists": "/etc/shardproxy/nutcracker.yml",
		"ExecStart":        "/usr/local/bin/shardproxy -c /etc/shardproxy/nutcracker.yml -a 127.0.0.1 --metrics-addr 127.0.0.1:22223 $SHARDPROXY_OPTS",
		"ExecReload":       "/usr/local/bin/shardproxy reload --pid $MAINPID",
		"Restart":          "on-failure",
		"User":             "shardproxy",
		"ProtectSystem":    "strict",
	} {
		if got := keys[key]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%q, want %q", key, got, want)
		}
	}
	for _, key := range []string{"ConditionPathExists", "PIDFile", "NotifyAccess"} {
		if got, ok := keys[key]; ok {
			t.Errorf("%s=%q: want none", key, got)
		}
	}
	dropIn := "#   [Service]\n#   Type=notify\n"
	if !strings.Contains(unit, dropIn) {
		t.Errorf("the unit's comment lacks the drop-in for systemd before 253:\n%s", dropIn)
	}

	systemdAnalyze := lookTool(t, "systemd-analyze")
	bin := buildProxy(t)
	verify := func(text string) string {
		t.Helper()
		unitPath := filepath.Join(t.TempDir(), "shardproxy.service")
		if err := os.WriteFile(unitPath, []byte(strings.ReplaceAll(text, "/usr/local/bin/shardproxy", bin)), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(systemdAnalyze, "verify", "--man=no", unitPath).CombinedOutput()
		if err != nil {
			t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
		}
		return strings.ReplaceAll(string(bytes.TrimSpace(out)), unitPath, "shardproxy.service")
	}
	version := systemdVersion(t, systemdAnalyze)
	out := verify(unit)
	if version >= 253 {
		if out != "" {
			t.Fatalf("systemd %d: systemd-analyze verify:\n%s", version, out)
		}
		return
	}
	var said []string
	for line := range strings.Lines(out) {
		_, msg, _ := strings.Cut(strings.TrimSpace(line), ": ") // "shardproxy.service:27: ..."
		said = append(said, msg)
	}
	if !slices.Equal(said, olderSystemdLines) {
		t.Fatalf("systemd %d: systemd-analyze verify says\n%s\nwant only\n%s", version, out, strings.Join(olderSystemdLines, "\n"))
	}
	older := strings.Replace(unit, "\nType=notify-reload\n", "\nType=notify\n", 1)
	older = strings.Replace(older, "\nReloadSignal=SIGUSR1\n", "\n", 1)
	if out := verify(older); out != "" {
		t.Fatalf("systemd %d: systemd-analyze verify, with Type=notify:\n%s", version, out)
	}
	t.Logf("systemd %d: verified with Type=notify, as the unit's drop-in for systemd before 253 says", version)
}

// systemdVersion is the version systemd-analyze reports ("systemd 252
// (252.38-1~deb12u1)").
func systemdVersion(t *testing.T, systemdAnalyze string) int {
	t.Helper()
	out, err := exec.Command(systemdAnalyze, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(out))
	if len(f) < 2 || f[0] != "systemd" {
		t.Fatalf("systemd-analyze --version: %q", out)
	}
	v, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatalf("systemd-analyze --version: %q", out)
	}
	return v
}

// TestUnitScrapeConfig checks that deploy/prometheus.yml scrapes exactly
// the metrics listener deploy/shardproxy.service opens: its one target is
// the unit's --metrics-addr, and the unit's ExecStart, run (its ports
// moved to free ones, under a NOTIFY_SOCKET of the test's own), serves
// metrics_path there once READY=1 is sent, with the stats port on
// loopback.
func TestUnitScrapeConfig(t *testing.T) {
	execStart := unitKeys(readUnit(t))["ExecStart"]
	if len(execStart) != 1 {
		t.Fatalf("ExecStart=%q", execStart)
	}
	args := strings.Fields(execStart[0])
	if args[len(args)-1] != "$SHARDPROXY_OPTS" {
		t.Fatalf("ExecStart does not end with $SHARDPROXY_OPTS: %q", execStart[0])
	}
	args = args[1 : len(args)-1]
	o, err := parseFlags(args, io.Discard)
	if err != nil {
		t.Fatalf("ExecStart's flags: %v", err)
	}
	if o.statsAddr != "127.0.0.1" || o.statsPort != 22222 || o.metricsAddr != "127.0.0.1:22223" {
		t.Fatalf("ExecStart: stats %s port %d, metrics %q", o.statsAddr, o.statsPort, o.metricsAddr)
	}

	b, err := os.ReadFile(filepath.Join(deployDir, "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var prom struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &prom); err != nil {
		t.Fatal(err)
	}
	if len(prom.ScrapeConfigs) != 1 || len(prom.ScrapeConfigs[0].StaticConfigs) != 1 {
		t.Fatalf("prometheus.yml: want one scrape config with one static config: %+v", prom.ScrapeConfigs)
	}
	job := prom.ScrapeConfigs[0]
	if targets := job.StaticConfigs[0].Targets; job.JobName != "shardproxy" || len(targets) != 1 || targets[0] != o.metricsAddr {
		t.Fatalf("prometheus.yml: job %q scrapes %q; the unit serves metrics on %s", job.JobName, targets, o.metricsAddr)
	}

	// Run the unit's command line, on free ports.
	ns := listenNotify(t)
	r := testservers.Redis(t)
	addr := fmt.Sprintf("127.0.0.1:%d", testservers.FreePort(t, "127.0.0.1"))
	conf := writeConf(t, fmt.Sprintf("alpha:\n  listen: %s\n  redis: true\n  servers:\n    - %s:1\n", addr, r.Addr))
	maddr := fmt.Sprintf("127.0.0.1:%d", testservers.FreePort(t, "127.0.0.1"))
	stats := testservers.FreePort(t, "127.0.0.1")
	for i, a := range args {
		switch a {
		case "/etc/shardproxy/nutcracker.yml":
			args[i] = conf
		case o.metricsAddr:
			args[i] = maddr
		}
	}
	cmd := exec.Command(buildProxy(t), append(args, "-s", strconv.Itoa(stats))...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+ns.path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if got := ns.next(t, "start"); !strings.HasPrefix(got, "READY=1\n") {
		t.Fatalf("start: %q", got)
	}
	code, body := httpGet(t, "http://"+maddr+job.MetricsPath)
	if code != 200 || !strings.Contains(body, "shardproxy_pool_client_connections{pool=\"alpha\"} ") {
		t.Fatalf("%s: %d\n%s", job.MetricsPath, code, body)
	}
	// The stats port answers on loopback, which -a 127.0.0.1 binds.
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", stats), 5*time.Second)
	if err != nil {
		t.Fatalf("stats port: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	doc, err := io.ReadAll(c)
	c.Close()
	if err != nil || !bytes.HasPrefix(doc, []byte("{")) || !bytes.Contains(doc, []byte(`"alpha"`)) {
		t.Fatalf("stats port: %v\n%s", err, doc)
	}
	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

// TestLogrotate runs deploy/logrotate.shardproxy, its paths moved to the
// test's files, on a running proxy's -o log: logrotate -d accepts it, and a
// forced rotation renames the file and makes the proxy, signalled through
// its pid file, write on in a new one while it keeps serving.
func TestLogrotate(t *testing.T) {
	logrotate := lookTool(t, "logrotate")
	b, err := os.ReadFile(filepath.Join(deployDir, "logrotate.shardproxy"))
	if err != nil {
		t.Fatal(err)
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	group, err := user.LookupGroupId(me.Gid)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	logPath := filepath.Join(dir, "shardproxy.log")
	p := startProxy(t, os.Stderr, "-o", logPath)
	conf := string(b)
	for _, r := range []struct{ old, new string }{
		{"/var/log/shardproxy/shardproxy.log", logPath},
		{"/run/shardproxy/shardproxy.pid", p.pidFile},
		{"create 0640 shardproxy adm", "create 0640 " + me.Username + " " + group.Name},
	} {
		if !strings.Contains(conf, r.old) {
			t.Fatalf("logrotate.shardproxy no longer has %q: the test needs updating", r.old)
		}
		conf = strings.ReplaceAll(conf, r.old, r.new)
	}
	confPath, state := filepath.Join(dir, "logrotate.conf"), filepath.Join(dir, "state")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	rotate := func(mode string) string {
		t.Helper()
		out, err := exec.Command(logrotate, mode, "-s", state, confPath).CombinedOutput()
		if err != nil || bytes.Contains(bytes.ToLower(out), []byte("error")) {
			t.Fatalf("logrotate %s: %v\n%s", mode, err, out)
		}
		return string(out)
	}
	if out := rotate("-d"); !strings.Contains(out, "considering log "+logPath) {
		t.Fatalf("logrotate -d does not consider %s:\n%s", logPath, out)
	}
	rotate("-f")
	waitForFile(t, logPath, `msg="SIGHUP: log file reopened"`)
	if b, _ := os.ReadFile(logPath + ".1"); !strings.Contains(string(b), `msg="shardproxy started"`) {
		t.Fatalf("the rotated log lacks the start:\n%s", b)
	}
	p.check(t)
	if got, err := testservers.Do(p.addr, "PING"); err != nil || got != "+PONG" {
		t.Fatalf("PING after the rotation: %q %v", got, err)
	}
	p.stop(t)
}
