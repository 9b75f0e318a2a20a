//go:build linux

package main

import (
	"bytes"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

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

// TestSystemdUnit checks deploy/shardproxy.service: what it must say (the
// proxy in the foreground, SIGUSR1 for reload, a user of its own, restart
// on failure), and that systemd-analyze verify finds nothing to say about
// it, with the binary's path pointing at a built binary.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "shardproxy.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	keys := map[string][]string{}
	for line := range strings.Lines(unit) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(k, "#") {
			keys[k] = append(keys[k], v)
		}
	}
	for key, want := range map[string]string{
		"Type":          "simple",
		"ExecStart":     "/usr/local/bin/shardproxy -c /etc/shardproxy/nutcracker.yml $SHARDPROXY_OPTS",
		"ExecReload":    "/bin/kill -USR1 $MAINPID",
		"Restart":       "on-failure",
		"User":          "shardproxy",
		"ProtectSystem": "strict",
	} {
		if got := keys[key]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%q, want %q", key, got, want)
		}
	}

	systemdAnalyze := lookTool(t, "systemd-analyze")
	bin := buildProxy(t)
	unitPath := filepath.Join(t.TempDir(), "shardproxy.service")
	if err := os.WriteFile(unitPath, []byte(strings.ReplaceAll(unit, "/usr/local/bin/shardproxy", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(systemdAnalyze, "verify", "--man=no", unitPath).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
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
