//go:build linux

package main

import (
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

func TestFleetCases(t *testing.T) {
	var got []string
	for _, c := range fleetCases(1000, false) {
		args, err := c.args("127.0.0.1:1")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c.want+" "+strings.Join(args, " "))
	}
	want := []string{
		"SET -h 127.0.0.1 -p 1 -c 50 -n 1000 -P 1 --csv -r 1000000 -t set",
		"GET -h 127.0.0.1 -p 1 -c 50 -n 1000 -P 1 --csv -r 1000000 -t get",
		"SET -h 127.0.0.1 -p 1 -c 50 -n 5000 -P 16 --csv -r 1000000 -t set",
		"GET -h 127.0.0.1 -p 1 -c 50 -n 5000 -P 16 --csv -r 1000000 -t get",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("cases:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if q := fleetCases(1000, true); len(q) != 1 || q[0].test != "set" || q[0].pipeline != 16 || q[0].requests != 5000 {
		t.Errorf("quick cases %+v, want SET at P=16 alone", q)
	}
	if fleetSize(false) != 256 || fleetSize(true) != 16 {
		t.Errorf("fleet of %d servers, %d with -quick; want 256 and 16", fleetSize(false), fleetSize(true))
	}
}

// TestFleetChecks checks the fleet's target rows: SET and GET at P=16
// against nutcracker (at least 2 ×) and anonymous memory after the runs
// (below nutcracker's), named after the fleet's size, "-" when not
// measured.
func TestFleetChecks(t *testing.T) {
	c := func(rps float64) cell { return cell{ran: true, res: runResult{rps: rps, requests: 1000}} }
	tests := []struct {
		name string
		rows []row
		mem  *fleetMemory
		want map[string]string // row: measured|met
	}{
		{name: "not run", want: map[string]string{
			"set P=16 (256 servers)": "|-", "get P=16 (256 servers)": "|-", "memory (256 servers)": "|-"}},
		{name: "measured", rows: []row{
			{test: "set", pipeline: "16", cells: [numTargets]cell{c(900), c(100), c(200)}},
			{test: "get", pipeline: "16", cells: [numTargets]cell{c(900), c(100), c(199)}},
			{test: "set", pipeline: "1", cells: [numTargets]cell{c(900), c(100), c(50)}},
		}, mem: &fleetMemory{servers: 256, after: [numTargets]int64{nutcracker: 12000, shardproxy: 19000},
			anon: [numTargets]int64{nutcracker: 10000, shardproxy: 7500}},
			want: map[string]string{"set P=16 (256 servers)": "2.00|yes", "get P=16 (256 servers)": "1.99|no",
				"memory (256 servers)": "0.75 (anonymous 7500 vs 10000 KB; RSS 19000 vs 12000 KB)|yes"}},
		{name: "quick, memory equal", rows: []row{
			{test: "set", pipeline: "16", cells: [numTargets]cell{c(900), c(100), {ran: true, err: io.EOF}}},
		}, mem: &fleetMemory{servers: 16, after: [numTargets]int64{nutcracker: 9000, shardproxy: 9000},
			anon: [numTargets]int64{nutcracker: 7000, shardproxy: 7000}},
			want: map[string]string{"set P=16 (16 servers)": "|-", "get P=16 (16 servers)": "|-",
				"memory (16 servers)": "1.00 (anonymous 7000 vs 7000 KB; RSS 9000 vs 9000 KB)|no"}},
		{name: "memory not read", mem: &fleetMemory{servers: 16}, want: map[string]string{"memory (16 servers)": "|-"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rs results
			if tc.rows != nil {
				rs.add("fleet", tc.rows)
			}
			rs.fleet = tc.mem
			got := map[string]string{}
			for _, ch := range targetChecks(&rs) {
				if strings.Contains(ch.target, "many servers") {
					got[ch.row] = ch.measured + "|" + ch.met
				}
			}
			if len(got) != 3 {
				t.Errorf("%d fleet rows, want 3: %q", len(got), got)
			}
			for k, w := range tc.want {
				if got[k] != w {
					t.Errorf("%s: got %q, want %q", k, got[k], w)
				}
			}
		})
	}
}

func TestRenderFleetMemory(t *testing.T) {
	out := renderFleetMemory(fleetMemory{servers: 256, started: [numTargets]int64{nutcracker: 3000, shardproxy: 12000},
		after: [numTargets]int64{nutcracker: 10000, shardproxy: 25000}, anon: [numTargets]int64{nutcracker: 8000, shardproxy: 6000}})
	lines := strings.Split(out, "\n")
	if len(lines) < 6 || !strings.HasPrefix(lines[0], "### Fleet memory") {
		t.Fatalf("unexpected table:\n%s", out)
	}
	for i, want := range [][]string{{"nutcracker", "256", "3000", "10000", "8000"}, {"shardproxy", "256", "12000", "25000", "6000"}} {
		if got := cols(lines[4+i]); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("line %d: %q, want %q", i, got, want)
		}
	}
	if !strings.Contains(out, "shardproxy/nutcracker: RSS 2.50, anonymous 0.75\n") {
		t.Errorf("no ratio line:\n%s", out)
	}
	if out := renderFleetMemory(fleetMemory{servers: 16}); !strings.Contains(out, "| -  ") ||
		!strings.Contains(out, "shardproxy/nutcracker: RSS -, anonymous -\n") {
		t.Errorf("unmeasured memory should show -:\n%s", out)
	}
}

// TestStopSince checks that a section's children are stopped and the
// others left running.
func TestStopSince(t *testing.T) {
	p, err := newProcs()
	if err != nil {
		t.Fatal(err)
	}
	defer p.stopAll()
	first, err := p.start("sleep0.log", "sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	m := p.mark()
	var later []int
	for i := range 3 {
		c, err := p.start("sleep"+strconv.Itoa(i+1)+".log", "sleep", "60")
		if err != nil {
			t.Fatal(err)
		}
		later = append(later, c.Process.Pid)
	}
	p.stopSince(m)
	for _, pid := range later {
		if alive(pid) {
			t.Errorf("pid %d still runs after stopSince", pid)
		}
	}
	if !alive(first.Process.Pid) || len(p.cmds) != 1 {
		t.Errorf("the child started before the mark: alive %v, %d children left", alive(first.Process.Pid), len(p.cmds))
	}
	p.stopSince(5) // past the end: nothing to do
	if len(p.cmds) != 1 {
		t.Errorf("%d children left, want 1", len(p.cmds))
	}
}

// TestQuickFleet runs the fleet section in quick mode with a shardproxy
// built from the module, against the 16 redis-servers it starts, and
// checks its rows, its memory table and that it stops all it started.
func TestQuickFleet(t *testing.T) {
	nc := testservers.Need(t, "nutcracker")
	b, p := prepared(t, []string{"-quick", "-sections", "fleet", "-nutcracker-bin", nc}, "redis-server", "redis-benchmark")
	start := time.Now()
	if err := b.runSections(); err != nil || len(b.failures) > 0 {
		t.Fatalf("runSections: %v, failures %v", err, b.failures)
	}
	t.Logf("fleet section in %v", time.Since(start).Round(time.Millisecond))
	if len(p.cmds) != 0 {
		t.Errorf("%d children still run after the fleet section", len(p.cmds))
	}
	report := b.report.String()
	var set []string
	for _, l := range strings.Split(sectionOf(report, "### Fleet: one pool of 16 "), "\n") {
		if strings.HasPrefix(l, "| set ") {
			set = cols(l)
		}
	}
	if len(set) != len(throughputHeader) || set[1] != "16" {
		t.Fatalf("no set P=16 row in the fleet table:\n%s", report)
	}
	for i := 2; i <= 6; i++ {
		if _, err := strconv.ParseFloat(set[i], 64); err != nil {
			t.Errorf("column %s is %q", throughputHeader[i], set[i])
		}
	}
	m := b.results.fleet
	if m == nil || m.servers != 16 || m.after[nutcracker] <= 0 || m.after[shardproxy] <= 0 || m.anon[shardproxy] <= 0 {
		t.Fatalf("fleet memory %+v", m)
	}
	for _, want := range []string{"### Fleet memory", "| set P=16 (16 servers) ", "| memory (16 servers) "} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
}
