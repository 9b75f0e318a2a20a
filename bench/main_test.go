//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name             string
		args             []string
		n, conns, rounds int
		sections         string
		wantErr          bool
	}{
		{name: "defaults: all but fleet", args: nil, n: 60000, conns: 10000, rounds: 3,
			sections: "apps,cluster,idle,large,memcache,redis,reshard"},
		{name: "quick shrinks", args: []string{"-quick"}, n: 2000, conns: 1000, rounds: 1,
			sections: "apps,cluster,idle,large,memcache,redis,reshard"},
		{name: "apps alone", args: []string{"-sections", "apps"}, n: 60000, conns: 10000, rounds: 3, sections: "apps"},
		{name: "cluster alone", args: []string{"-sections", "cluster"}, n: 60000, conns: 10000, rounds: 3, sections: "cluster"},
		{name: "fleet alone", args: []string{"-sections", "fleet", "-quick"}, n: 2000, conns: 1000, rounds: 1, sections: "fleet"},
		{name: "all", args: []string{"-sections", "all"}, n: 60000, conns: 10000, rounds: 3,
			sections: "apps,cluster,fleet,idle,large,memcache,redis,reshard"},
		{name: "all and one", args: []string{"-sections", "redis,all"}, n: 60000, conns: 10000, rounds: 3,
			sections: "apps,cluster,fleet,idle,large,memcache,redis,reshard"},
		{name: "quick keeps explicit n", args: []string{"-quick", "-n", "5000", "-sections", "redis"}, n: 5000, conns: 1000, rounds: 1, sections: "redis"},
		{name: "unknown section", args: []string{"-sections", "redis,predixy"}, wantErr: true},
		{name: "tiny n", args: []string{"-n", "5"}, wantErr: true},
		{name: "stray argument", args: []string{"extra"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(tc.args)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			var secs []string
			for _, s := range []string{"apps", "cluster", "fleet", "idle", "large", "memcache", "redis", "reshard"} {
				if o.sections[s] {
					secs = append(secs, s)
				}
			}
			if o.n != tc.n || o.conns != tc.conns || o.rounds != tc.rounds || strings.Join(secs, ",") != tc.sections {
				t.Errorf("got n=%d conns=%d rounds=%d sections=%v", o.n, o.conns, o.rounds, secs)
			}
		})
	}
}

// TestPoolConfigAcceptedByNutcracker checks the generated YAML with
// nutcracker's own config test: the pools of the comparison sections, and
// the fleet's pool of 256 servers.
func TestPoolConfigAcceptedByNutcracker(t *testing.T) {
	bin := testservers.Need(t, "nutcracker")
	var b strings.Builder
	writePool(&b, "bench_redis", "127.0.0.1:1", true, []int{2, 3, 4, 5})
	writePool(&b, "bench_memcache", "127.0.0.1:6", false, []int{7, 8, 9, 10})
	var fleet strings.Builder
	ports := make([]int, fleetServers)
	for i := range ports {
		ports[i] = 20000 + i
	}
	writePool(&fleet, "bench_redis", "127.0.0.1:1", true, ports)
	for i, yaml := range []string{b.String(), fleet.String()} {
		conf := filepath.Join(t.TempDir(), fmt.Sprintf("n%d.yml", i))
		if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "-t", "-c", conf).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "syntax is ok") {
			t.Fatalf("nutcracker -t: %v\n%s\n%s", err, out, yaml)
		}
	}
}

// TestMain lets the test binary stand in for the bench binary as the bare
// hop, which the bench starts by running itself.
func TestMain(m *testing.M) {
	if len(os.Args) == 4 && os.Args[1] == hopCommand {
		fmt.Fprintln(os.Stderr, "bench hop:", runHop(os.Args[2], os.Args[3]))
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// TestQuickRun runs every section in quick mode with a second nutcracker
// standing in for shardproxy, against real servers.
func TestQuickRun(t *testing.T) {
	nc := testservers.Need(t, "nutcracker")
	b, _ := prepared(t, []string{"-quick", "-conns", "300", "-proxy-bin", nc, "-nutcracker-bin", nc}, "redis-server", "redis-benchmark", "memcached", "memcslap")
	if err := b.runSections(); err != nil || len(b.failures) > 0 {
		t.Fatalf("runSections: %v, failures %v", err, b.failures)
	}
	report := b.report.String()
	for _, want := range []string{"### Redis", "### Memcache", "### Idle", "### Large", "| set  | 1 |", "| 300 "} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if strings.Contains(report, "ERR") {
		t.Errorf("report has failed cells:\n%s", report)
	}
	resp3 := sectionOf(report, "### Redis RESP3")
	checkQuickRESP3(t, resp3)
	report = strings.Replace(report, resp3, "", 1)
	cl := sectionOf(report, "### Redis Cluster")
	checkQuickCluster(t, cl, false)
	report = strings.Replace(report, cl, "", 1)
	checkQuickApps(t, sectionOf(report, "### Pub/sub"), sectionOf(report, "### Blocking commands"))
	rows := 0
	for _, l := range strings.Split(report, "\n") {
		if !strings.HasPrefix(l, "| set ") {
			continue
		}
		rows++
		c := cols(l)
		for _, i := range []int{2, 3, 4, 5, 6} { // three rps and two ratios
			if _, err := strconv.ParseFloat(c[i], 64); err != nil {
				t.Errorf("column %s is %q in %s", throughputHeader[i], c[i], l)
			}
		}
		// Direct's server (a redis-server, or a memcached) and both proxies were sampled.
		for _, i := range []int{11, 12, 13} {
			if _, err := strconv.ParseFloat(strings.TrimPrefix(c[i], "~"), 64); err != nil {
				t.Errorf("column %s is %q in %s", throughputHeader[i], c[i], l)
			}
		}
	}
	if rows != 3 {
		t.Errorf("%d set rows, want 3 (redis, memcache, large)", rows)
	}
	// The large section also measures the bare hop: its rps and ratios.
	for _, l := range strings.Split(report, "\n") {
		if !strings.HasPrefix(l, "| set 100KB ") {
			continue
		}
		c := cols(l)
		if len(c) != len(throughputHeader)+3 {
			t.Fatalf("large row has %d columns, want %d with the bare hop's: %s", len(c), len(throughputHeader)+3, l)
		}
		for _, i := range []int{len(c) - 3, len(c) - 2, len(c) - 1} {
			if _, err := strconv.ParseFloat(c[i], 64); err != nil {
				t.Errorf("bare hop column %d is %q in %s", i, c[i], l)
			}
		}
	}
}

// sectionOf returns the part of report from the line starting with title to
// the next "### " title.
func sectionOf(report, title string) string {
	i := strings.Index(report, title)
	if i < 0 {
		return ""
	}
	rest := report[i:]
	if j := strings.Index(rest[len(title):], "\n### "); j >= 0 {
		return rest[:len(title)+j+1]
	}
	return rest
}

// checkQuickRESP3 checks the RESP3 table of a quick run with a nutcracker
// standing in for shardproxy: direct's RESP3 run has numbers, the proxies'
// columns are n/a.
func checkQuickRESP3(t *testing.T, text string) {
	t.Helper()
	var set []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "| set ") {
			set = cols(l)
		}
	}
	if len(set) != len(resp3Header) {
		t.Fatalf("RESP3 table has no set row of %d columns:\n%s", len(resp3Header), text)
	}
	if _, err := strconv.ParseFloat(set[2], 64); err != nil || set[1] != "1" {
		t.Errorf("RESP3 set row: P %q, direct rps %q: %s", set[1], set[2], text)
	}
	for i := 3; i < len(set); i++ {
		if set[i] != "n/a" {
			t.Errorf("RESP3 column %s is %q, want n/a with no shardproxy", resp3Header[i], set[i])
		}
	}
}

// checkQuickApps checks the apps tables of a quick run with a nutcracker
// standing in for shardproxy: all three rows, direct measured, the proxies
// n/a.
func checkQuickApps(t *testing.T, pub, ping string) {
	t.Helper()
	var rows [][]string
	for _, text := range []string{pub, ping} {
		for _, l := range strings.Split(text, "\n")[4:] {
			if strings.HasPrefix(l, "| ") {
				rows = append(rows, cols(l))
			}
		}
	}
	if len(rows) != 3 {
		t.Fatalf("apps tables have %d rows, want 3:\n%s%s", len(rows), pub, ping)
	}
	for i, r := range rows {
		direct, proxy := 3, 5 // pub/sub: subscribers, published and delivered first
		if i == 2 {
			direct, proxy = 2, 4
		}
		if _, err := strconv.ParseFloat(r[direct], 64); err != nil || r[proxy-1] != "n/a" || r[proxy] != "n/a" {
			t.Errorf("apps row %q: want direct measured, nutcracker and shardproxy n/a", r)
		}
	}
}

// prepared parses args as bench's command line and prepares a bench over
// real servers, skipping the test unless the programs in need are on PATH.
// The processes it starts stop when the test ends.
func prepared(t *testing.T, args []string, need ...string) (*bench, *procs) {
	t.Helper()
	for _, p := range need {
		testservers.Need(t, p)
	}
	o, err := parseFlags(args)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newProcs()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.stopAll)
	b := &bench{ctx: context.Background(), o: o, out: io.Discard}
	if err := b.prepare(p); err != nil {
		t.Fatal(err)
	}
	return b, p
}
