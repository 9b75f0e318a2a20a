//go:build linux

package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRenderThroughput(t *testing.T) {
	tick := time.Second / time.Duration(clockTicks())
	good := func(rps float64, cpu time.Duration, reqs int64) cell {
		return cell{ran: true, hasCPU: cpu > 0, cpu: cpu, res: runResult{rps: rps, p50: 0.5, p99: 1.25, hasLatency: true, requests: reqs}}
	}
	cpu := 1000 * tick // µs per request below = cpu µs / 1e6 requests
	tests := []struct {
		name string
		row  row
		want []string // cells of the data line, in order
	}{
		{name: "ratios", row: row{test: "set", pipeline: "1", cells: [numTargets]cell{
			good(1000, cpu/2, 1e6), good(400, cpu, 1e6), good(500, cpu*2, 1e6)}},
			want: []string{"set", "1", "1000", "400", "500", "1.25", "0.50", "0.500", "0.500", "1.250", "1.250",
				fmtCPU(cpu / 2), fmtCPU(cpu), fmtCPU(2 * cpu), "2.00"}},
		{name: "direct not sampled", row: row{test: "set", pipeline: "1", cells: [numTargets]cell{
			good(1000, 0, 0), good(400, cpu, 1e6), good(500, cpu*2, 1e6)}},
			want: []string{"set", "1", "1000", "400", "500", "1.25", "0.50", "0.500", "0.500", "1.250", "1.250",
				"-", fmtCPU(cpu), fmtCPU(2 * cpu), "2.00"}},
		{name: "failed proxy", row: row{test: "get", pipeline: "16", cells: [numTargets]cell{
			good(1000, cpu, 1e6), good(400, cpu, 1e6), {ran: true, err: errors.New("x")}}},
			want: []string{"get", "16", "1000", "400", "ERR", "-", "-", "0.500", "-", "1.250", "-",
				fmtCPU(cpu), fmtCPU(cpu), "-", "-"}},
		{name: "failed direct", row: row{test: "get", pipeline: "1", cells: [numTargets]cell{
			{ran: true, err: errors.New("x")}, good(400, cpu, 1e6), good(500, cpu, 1e6)}},
			want: []string{"get", "1", "ERR", "400", "500", "1.25", "-", "0.500", "0.500", "1.250", "1.250",
				"-", fmtCPU(cpu), fmtCPU(cpu), "1.00"}},
		{name: "not run", row: row{test: "mset", pipeline: "1"},
			want: []string{"mset", "1", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-"}},
		{name: "coarse cpu", row: row{test: "set", pipeline: "1", cells: [numTargets]cell{
			func() cell { c := good(1000, cpu, 1e6); c.coarse = true; return c }(),
			func() cell { c := good(400, cpu, 1e6); c.coarse = true; return c }(), good(400, cpu, 1e6)}},
			want: []string{"set", "1", "1000", "400", "400", "1.00", "0.40", "0.500", "0.500", "1.250", "1.250",
				"~" + fmtCPU(cpu), "~" + fmtCPU(cpu), fmtCPU(cpu), "1.00"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := renderThroughput("T", []row{tc.row})
			lines := strings.Split(strings.Replace(strings.TrimSpace(out), "\n\n", "\n", 1), "\n")
			if len(lines) != 4 || lines[0] != "### T" {
				t.Fatalf("unexpected table:\n%s", out)
			}
			hdr := cols(lines[1])
			if len(hdr) != len(throughputHeader) {
				t.Fatalf("header has %d columns, want %d", len(hdr), len(throughputHeader))
			}
			if hdr[11] != "CPU µs/req direct" || hdr[12] != "CPU µs/req nutcracker" {
				t.Errorf("CPU columns start %q, %q; want direct's, then nutcracker's", hdr[11], hdr[12])
			}
			got := cols(lines[3])
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("row\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func fmtCPU(d time.Duration) string { return num(float64(d.Microseconds())/1e6, true, 2) }

// cols splits a Markdown table line into trimmed cells.
func cols(line string) []string {
	parts := strings.Split(strings.Trim(line, "|"), "|")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
	}
	return parts
}

func TestMarkdownAlignsColumns(t *testing.T) {
	out := markdown("T", []string{"a", "µs"}, [][]string{{"long value", "1"}})
	lines := strings.Split(strings.TrimSpace(out), "\n")[2:]
	for _, l := range lines[1:] {
		if len([]rune(l)) != len([]rune(lines[0])) {
			t.Errorf("line %q is not as wide as %q", l, lines[0])
		}
	}
}
