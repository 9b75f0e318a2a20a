package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

func writeConf(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "nutcracker.yml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTestConf(t *testing.T) {
	good := writeConf(t, "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  servers:\n    - 127.0.0.1:6379:1\n")
	bad := writeConf(t, "alpha:\n  listen: 127.0.0.1:22121\n  hash: fnv\n  servers:\n    - 127.0.0.1:6379:1\n")
	migrating := writeConf(t, "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  servers:\n    - 127.0.0.1:6379:1\n"+
		"    - 127.0.0.1:6380:1\n  migrate_from:\n    servers: [127.0.0.1:6379:1]\n")
	tests := []struct {
		name     string
		args     []string
		code     int
		out, err string
	}{
		{"ok", []string{"-t", "-c", good}, 0, "syntax is ok", ""},
		{"long flags", []string{"--test-conf", "--conf-file=" + good}, 0, "syntax is ok", ""},
		{"bad hash", []string{"-t", "-c", bad}, 1, "", `pool "alpha": key "hash": unknown hash "fnv"`},
		{"migration warns", []string{"-t", "-c", migrating}, 0, "syntax is ok",
			`warning: pool "alpha": a migration is configured (migrate_from, line 7)`},
		{"missing file", []string{"-t", "-c", filepath.Join(t.TempDir(), "none.yml")}, 1, "", "syntax is invalid"},
		{"version", []string{"-V"}, 0, "This is shardproxy-", ""},
		{"describe stats", []string{"-D"}, 0, "server_ejected_at", ""},
		{"test with daemonize", []string{"-t", "-d", "-c", good}, 0, "syntax is ok", ""},
		{"unknown flag", []string{"--bogus"}, 1, "", "flag provided but not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", code, tc.code, out.String(), errb.String())
			}
			if !strings.Contains(out.String(), tc.out) || !strings.Contains(errb.String(), tc.err) {
				t.Fatalf("stdout %q stderr %q; want %q / %q", out.String(), errb.String(), tc.out, tc.err)
			}
		})
	}
}

// TestServeAndStop builds the binary, serves a pool in front of a real
// redis-server, writes the pid file and the stats JSON, and exits 0 on
// SIGTERM.
func TestServeAndStop(t *testing.T) {
	r := testservers.Redis(t)
	port := testservers.FreePort(t, "127.0.0.1")
	stats := testservers.FreePort(t, "127.0.0.1")
	conf := writeConf(t, fmt.Sprintf("alpha:\n  listen: 127.0.0.1:%d\n  redis: true\n  servers:\n    - %s:1\n", port, r.Addr))
	bin := filepath.Join(t.TempDir(), "shardproxy")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	pid := filepath.Join(t.TempDir(), "shardproxy.pid")
	cmd := exec.Command(bin, "-c", conf, "-s", fmt.Sprint(stats), "-a", "127.0.0.1", "-p", pid, "-v", "6")
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := testservers.WaitListening(addr, 10*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	if got, err := testservers.Do(addr, "SET", "k", "v"); err != nil || got != "+OK" {
		t.Fatalf("SET: %q %v", got, err)
	}
	if got, err := testservers.Do(r.Addr, "GET", "k"); err != nil || got != "v" {
		t.Fatalf("backend GET: %q %v", got, err)
	}
	if b, err := os.ReadFile(pid); err != nil || strings.TrimSpace(string(b)) != fmt.Sprint(cmd.Process.Pid) {
		t.Fatalf("pid file: %q %v", b, err)
	}
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", stats))
	if err != nil {
		t.Fatal(err)
	}
	var js bytes.Buffer
	c.SetDeadline(time.Now().Add(5 * time.Second))
	js.ReadFrom(c)
	c.Close()
	for _, field := range []string{`"service":"nutcracker"`, `"alpha":`, `"client_connections"`, `"requests":1`} {
		if !strings.Contains(js.String(), field) {
			t.Fatalf("stats JSON lacks %s: %s", field, js.String())
		}
	}
	checkDescribed(t, js.Bytes(), "alpha", r.Addr)
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit 10 s after SIGTERM")
	}
	if _, err := os.Stat(pid); !os.IsNotExist(err) {
		t.Fatalf("pid file left behind: %v", err)
	}
}

func TestThreadsFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
		bad  bool
	}{
		{args: nil, want: 0},
		{args: []string{"-T", "3"}, want: 3},
		{args: []string{"--threads", "2"}, want: 2},
		{args: []string{"-T", "-1"}, bad: true},
		{args: []string{"-T", "many"}, bad: true},
	} {
		o, err := parseFlags(tc.args, io.Discard)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: accepted, want an error", tc.args)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if o.threads != tc.want {
			t.Errorf("%q: threads %d, want %d", tc.args, o.threads, tc.want)
		}
	}
}

// checkDescribed checks that -D describes exactly the pool and server keys
// of the stats JSON doc, in its pool and server sections.
func checkDescribed(t *testing.T, doc []byte, pool, server string) {
	t.Helper()
	var stats map[string]json.RawMessage
	if err := json.Unmarshal(doc, &stats); err != nil {
		t.Fatalf("stats JSON: %v: %s", err, doc)
	}
	var poolStats map[string]json.RawMessage
	if err := json.Unmarshal(stats[pool], &poolStats); err != nil {
		t.Fatalf("pool %s in the stats JSON: %v: %s", pool, err, doc)
	}
	var serverStats map[string]json.RawMessage
	if err := json.Unmarshal(poolStats[server], &serverStats); err != nil {
		t.Fatalf("server %s in the stats JSON: %v: %s", server, err, doc)
	}
	delete(poolStats, server)
	sections := map[string][]string{}
	section := ""
	for line := range strings.Lines(statsDescription) {
		switch {
		case strings.HasSuffix(line, ":\n"):
			section = strings.TrimSuffix(line, ":\n")
		case strings.Contains(line, "(only with sentinels)"):
			// Shown by pools with sentinels alone.
		case strings.HasPrefix(line, "  "):
			sections[section] = append(sections[section], strings.Fields(line)[0])
		}
	}
	for name, keys := range map[string]map[string]json.RawMessage{"pool stats": poolStats, "server stats": serverStats} {
		var inJSON []string
		for k := range keys {
			inJSON = append(inJSON, k)
		}
		slices.Sort(inJSON)
		described := slices.Sorted(slices.Values(sections[name]))
		if !slices.Equal(inJSON, described) {
			t.Errorf("-D %s: %q\nstats JSON: %q", name, described, inJSON)
		}
	}
}
