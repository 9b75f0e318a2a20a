//go:build linux

package main

import (
	"fmt"
	"strings"
	"time"
)

// runResult is what one load-generator run reports.
type runResult struct {
	rps        float64
	p50, p99   float64 // milliseconds, when hasLatency
	hasLatency bool
	requests   int64 // requests the target served during the run (CPU per request)
}

// cell is one target's measurement in a row.
type cell struct {
	ran bool
	res runResult
	cpu time.Duration // CPU the leg's process (the proxy, or direct's server) used during the run
	// moreCPU is the CPU of the leg's further processes (a cluster's
	// nodes) during the run.
	moreCPU time.Duration
	hasCPU  bool
	coarse  bool // cpu is only a few clock ticks, so CPU per request is rough
	err     error
}

// cpuPerReq returns microseconds of CPU per request of the leg's process:
// the proxy, or direct's server.
func (c cell) cpuPerReq() (float64, bool) {
	if !c.ran || c.err != nil || !c.hasCPU || c.res.requests <= 0 {
		return 0, false
	}
	return float64(c.cpu.Microseconds()) / float64(c.res.requests), true
}

// row is one test at one pipeline depth, measured on every target.
type row struct {
	test     string
	pipeline string
	cells    [numTargets]cell
}

var throughputHeader = []string{
	"test", "P", "direct rps", "nutcracker rps", "shardproxy rps", "proxy/nutcracker", "proxy/direct",
	"p50 ms nutcracker", "p50 ms proxy", "p99 ms nutcracker", "p99 ms proxy",
	"CPU µs/req direct", "CPU µs/req nutcracker", "CPU µs/req proxy", "CPU proxy/nutcracker",
}

// renderThroughput formats rows as a Markdown table with ratios, and the
// bare hop's columns when a row measured it.
func renderThroughput(title string, rows []row) string {
	withHop := false
	for _, r := range rows {
		withHop = withHop || r.cells[hop].ran
	}
	header := throughputHeader
	if withHop {
		header = append(header[:len(header):len(header)], "bare hop rps", "hop/direct", "proxy/hop")
	}
	var lines [][]string
	for _, r := range rows {
		d, n, s := r.cells[direct], r.cells[nutcracker], r.cells[shardproxy]
		dc, dok := d.cpuPerReq()
		nc, nok := n.cpuPerReq()
		sc, sok := s.cpuPerReq()
		lines = append(lines, []string{
			r.test, r.pipeline, rps(d), rps(n), rps(s),
			ratio(s.res.rps, n.res.rps, ok(s) && ok(n)), ratio(s.res.rps, d.res.rps, ok(s) && ok(d)),
			latency(n, n.res.p50), latency(s, s.res.p50), latency(n, n.res.p99), latency(s, s.res.p99),
			cpuNum(dc, dok, d.coarse), cpuNum(nc, nok, n.coarse), cpuNum(sc, sok, s.coarse), ratio(sc, nc, nok && sok),
		})
		if withHop {
			h := r.cells[hop]
			lines[len(lines)-1] = append(lines[len(lines)-1], rps(h),
				ratio(h.res.rps, d.res.rps, ok(h) && ok(d)), ratio(s.res.rps, h.res.rps, ok(s) && ok(h)))
		}
	}
	return markdown(title, header, lines)
}

func ok(c cell) bool { return c.ran && c.err == nil }

func rps(c cell) string {
	switch {
	case !c.ran:
		return "-"
	case c.err != nil:
		return "ERR"
	}
	return fmt.Sprintf("%.0f", c.res.rps)
}

func latency(c cell, v float64) string { return num(v, ok(c) && c.res.hasLatency, 3) }

func num(v float64, valid bool, prec int) string {
	if !valid {
		return "-"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

// cpuNum formats CPU per request; "~" marks a figure from fewer than
// coarseTicks clock ticks.
func cpuNum(v float64, valid, coarse bool) string {
	if valid && coarse {
		return "~" + num(v, valid, 2)
	}
	return num(v, valid, 2)
}

func ratio(a, b float64, valid bool) string {
	if !valid || b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// markdown renders a titled Markdown table with padded columns.
func markdown(title string, header []string, lines [][]string) string {
	width := make([]int, len(header))
	for i, h := range header {
		width[i] = len([]rune(h))
	}
	for _, l := range lines {
		for i, c := range l {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "### %s\n\n", title)
	writeLine(&b, header, width)
	sep := make([]string, len(header))
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
	}
	writeLine(&b, sep, width)
	for _, l := range lines {
		writeLine(&b, l, width)
	}
	b.WriteString("\n")
	return b.String()
}

func writeLine(b *strings.Builder, cols []string, width []int) {
	b.WriteString("|")
	for i, c := range cols {
		fmt.Fprintf(b, " %s%s |", c, strings.Repeat(" ", width[i]-len([]rune(c))))
	}
	b.WriteString("\n")
}
