package main

import (
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/proxy"
	"github.com/shardproxy/shardproxy/stats"
)

// startInProcess starts a proxy in this process on the file at path, with
// its stats on a free port, and returns it and its stats address.
func startInProcess(t *testing.T, path string) (*proxy.Proxy, string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	px := proxytest.StartProxyOpts(t, string(data), proxy.Options{StatsAddr: "127.0.0.1:0", ConfigPath: path})
	return px, px.StatsAddr().String()
}

// TestReshardStatsMigration fills a pool of 3 servers through the proxy,
// reloads it onto 4 with migrate_from, and watches: the command exits 0
// once the migration is complete, having printed keys moved > 0, and the
// proxy agrees it is complete.
func TestReshardStatsMigration(t *testing.T) {
	var addrs []string
	for range 4 {
		addrs = append(addrs, testservers.Redis(t).Addr)
	}
	lines := namedLines(addrs)
	listen := proxytest.FreeListen(t)
	conf := writeConf(t, poolYAML(listen, lines[:3]))
	px, stats := startInProcess(t, conf)
	var keys []string
	for i := range 4000 {
		keys = append(keys, fmt.Sprintf("user:%d:%d", i*104729, i))
	}
	setKeys(t, listen, keys) // through the proxy: each on its owner

	grown := poolYAML(listen, lines, "migrate_rate: 2000", "migrate_from: {servers: ["+strings.Join(lines[:3], ", ")+"]}")
	if err := os.WriteFile(conf, []byte(grown), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := px.Reload(); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runReshardCmd("--stats", stats, "-c", conf, "--interval", "100ms", "--timeout", "2m")
	t.Logf("stdout:\n%s", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	m := regexp.MustCompile(`migration complete: every proxy \(1\) reports migration_pending 0; keys moved (\d+), migration_errors 0`).
		FindStringSubmatch(out)
	if m == nil {
		t.Fatal("no completion line with migration_errors 0")
	}
	if n, _ := strconv.Atoi(m[1]); n == 0 {
		t.Error("keys moved 0")
	}
	if !strings.Contains(out, "3/3 old owners scanned") {
		t.Error("no progress line with 3/3 old owners scanned")
	}
	for _, p := range px.Snapshot().Pools {
		if p.MigrationPending != 0 || p.KeysMigrated == 0 {
			t.Errorf("the proxy says migration_pending %d, keys_migrated %d", p.MigrationPending, p.KeysMigrated)
		}
	}
}

// TestReshardStatsFailures: proxies running different files, a proxy not
// running the file of -c, a stats address nobody answers, and a migration
// that cannot complete each exit non-zero, naming the cause.
func TestReshardStatsFailures(t *testing.T) {
	r := testservers.Redis(t)
	confA := writeConf(t, poolYAML(proxytest.FreeListen(t), []string{r.Addr + ":1"}))
	confB := writeConf(t, poolYAML(proxytest.FreeListen(t), []string{r.Addr + ":1"}))
	_, statsA := startInProcess(t, confA)
	_, statsB := startInProcess(t, confB)
	cfgA, err := config.Load(confA)
	if err != nil {
		t.Fatal(err)
	}
	cfgB, err := config.Load(confB)
	if err != nil {
		t.Fatal(err)
	}
	nobody := proxytest.FreeListen(t)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"different files", []string{"--stats", statsA + "," + statsB},
			[]string{"config digest mismatch", statsA, statsB, cfgA.Digest, cfgB.Digest}},
		{"not the file of -c", []string{"--stats", statsB, "-c", confA},
			[]string{"config digest mismatch", statsB, cfgB.Digest, cfgA.Digest, confA}},
		{"unreachable", []string{"--stats", statsA + "," + nobody},
			[]string{"proxy " + nobody + ": unreachable on its stats port"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runReshardCmd(append(tc.args, "--interval", "100ms", "--timeout", "1m")...)
			if code == 0 {
				t.Fatalf("exit 0; stdout %q", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q lacks %q", errOut, w)
				}
			}
		})
	}
}

// TestReshardStatsStuck grows a pool onto a "server" that closes every
// connection at once: its MIGRATEs fail, so migration_errors rises with
// each of the mover's retries (one a second) and the migration never
// completes. --fail-on-error stops at the first rise; without it the watch
// goes on until --timeout.
func TestReshardStatsStuck(t *testing.T) {
	r := testservers.Redis(t)
	listen := proxytest.FreeListen(t)
	lines := []string{r.Addr + ":1 s0", closingServer(t) + ":1 s1"}
	conf := writeConf(t, poolYAML(listen, lines[:1]))
	px, stats := startInProcess(t, conf)
	var keys []string
	for i := range 200 {
		keys = append(keys, fmt.Sprintf("user:%d", i))
	}
	setKeys(t, listen, keys)
	grown := poolYAML(listen, lines, "migrate_from: {servers: ["+lines[0]+"]}")
	if err := os.WriteFile(conf, []byte(grown), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := px.Reload(); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runReshardCmd("--stats", stats, "--interval", "200ms", "--timeout", "1m", "--fail-on-error")
	if code == 0 || !strings.Contains(errOut, "migration_errors rose") || !strings.Contains(out, "migration_errors") {
		t.Errorf("--fail-on-error: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, errOut = runReshardCmd("--stats", stats, "--pool", "alpha", "--interval", "200ms", "--timeout", "3s")
	if code == 0 || !strings.Contains(errOut, "timeout after 3s") || !strings.Contains(errOut, "migration_pending 1") {
		t.Errorf("--timeout: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// fakeStats serves docs on a stats port, one per connection in turn, the
// last one from then on.
func fakeStats(t *testing.T, docs ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(docs[min(i, len(docs)-1)]))
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// TestReshardStatsSequence watches a stats port that shows a migration
// waiting for start_at, then started with a failed MIGRATE, then complete:
// each state is printed, and the exit is 0 without --fail-on-error.
func TestReshardStatsSequence(t *testing.T) {
	doc := func(started, pending, moved, errs int) string {
		return fmt.Sprintf(`{"service":"nutcracker","config_digest":"0123456789ab","alpha":{"requests":5,`+
			`"migration_started":%d,"migration_pending":%d,"keys_migrated":%d,"migration_errors":%d,`+
			`"s0":{"requests":1}}}`, started, pending, moved, errs)
	}
	addr := fakeStats(t, doc(0, 2, 0, 0), doc(1, 1, 50, 1), doc(1, 0, 90, 1))
	code, out, errOut := runReshardCmd("--stats", addr, "--interval", "10ms")
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}
	want := []string{
		"watching pool alpha on 1 proxy (config_digest 0123456789ab)",
		"[....................] 0/2 old owners scanned  keys moved 0 (+0)  - keys/s  ETA -  not started on 1 pool of a proxy (start_at)",
		"proxy " + addr + " pool alpha: migration_errors 1 (+1)",
		"[##########..........] 1/2 old owners scanned  keys moved 50 (+50)",
		"migration complete: every proxy (1) reports migration_pending 0; keys moved 90, migration_errors 1",
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("stdout lacks %q:\n%s", w, out)
		}
	}
	// Two proxies running the same file: complete once both are, with
	// their keys summed.
	a1 := fakeStats(t, doc(1, 1, 5, 0), doc(1, 0, 30, 0))
	a2 := fakeStats(t, doc(1, 2, 7, 0), doc(1, 1, 20, 0), doc(1, 0, 40, 0))
	code, out, errOut = runReshardCmd("--stats", a1+","+a2, "--interval", "10ms")
	if code != 0 || !strings.Contains(out, "watching pool alpha on 2 proxies") ||
		!strings.Contains(out, "2/3 old owners scanned  keys moved 50 (+38)") ||
		!strings.Contains(out, "migration complete: every proxy (2) reports migration_pending 0; keys moved 70, migration_errors 0") {
		t.Errorf("two proxies: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	addr = fakeStats(t, doc(1, 2, 0, 0), doc(1, 2, 10, 3))
	code, out, errOut = runReshardCmd("--stats", addr, "--interval", "10ms", "--fail-on-error")
	if code == 0 || !strings.Contains(errOut, "migration_errors rose (3 in all) and --fail-on-error is set") {
		t.Errorf("--fail-on-error: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	addr = fakeStats(t, "-ERR not a stats port\r\n")
	if code, _, errOut = runReshardCmd("--stats", addr); code == 0 || !strings.Contains(errOut, "proxy "+addr+": its stats port answers no stats JSON") {
		t.Errorf("no JSON: exit %d, stderr %q", code, errOut)
	}
	addr = fakeStats(t, `{"service":"nutcracker","alpha":{"requests":1}}`)
	if code, _, errOut = runReshardCmd("--stats", addr); code == 0 || !strings.Contains(errOut, "no config_digest") {
		t.Errorf("nutcracker's stats: exit %d, stderr %q", code, errOut)
	}
}

// closingServer listens on a loopback port and closes each connection as
// soon as it is accepted; the port stays taken until the test ends.
func closingServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// TestReshardStatsTerminal: on a terminal the progress line is redrawn in
// place, and the lines printed between two looks (errors, the end) start
// on a line of their own; a file or buffer is no terminal.
func TestReshardStatsTerminal(t *testing.T) {
	var out strings.Builder
	wt := &watch{o: &reshardOptions{}, addrs: []string{"p1"}, pools: []string{"alpha"}, w: &out, tty: true,
		start: time.Now(), maxPend: map[string]int64{}, errs: map[string]int64{}}
	looks := []stats.Migration{{Pending: 2}, {Pending: 1, Moved: 10, Errors: 1}, {Pending: 0, Moved: 20, Errors: 1}}
	for i, c := range looks {
		complete, err := wt.report([]*stats.Document{{Digest: "d", Pools: map[string]stats.Migration{"alpha": c}}}, time.Now())
		if err != nil || complete != (i == len(looks)-1) {
			t.Fatalf("look %d: complete %v, %v", i, complete, err)
		}
		wt.looks++
	}
	want := "\r\x1b[K[....................] 0/2 old owners scanned  keys moved 0 (+0)  - keys/s  ETA -\n" +
		"proxy p1 pool alpha: migration_errors 1 (+1) (see the proxy's log)\n" +
		"\r\x1b[K[##########..........] 1/2 old owners scanned  keys moved 10 (+10)"
	if got := out.String(); !strings.HasPrefix(got, want) || !strings.Contains(got, " done\nmigration complete: ") ||
		strings.Count(got, "\r\x1b[K") != 3 {
		t.Errorf("terminal output %q, want it to start with %q, redraw 3 times and end the line before the end", got, want)
	}
	f, err := os.Create(t.TempDir() + "/out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if writesToTerminal(f) || writesToTerminal(&out) {
		t.Error("a file or a buffer taken for a terminal")
	}
}
