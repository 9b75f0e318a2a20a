//go:build linux

package main

import (
	"fmt"
	"strings"
)

// results are the measurements of one run that the targets are checked
// against: throughput rows by section ("redis", "memcache", "large"), the
// RESP3 rows and the idle connections, when those sections ran. The apps
// and cluster rows have no target (the cluster target is against
// predixy, which is not installed here); they are kept for the tests.
type results struct {
	rows    map[string][]row
	resp3   []protoRow
	apps    []appRow
	cluster []clusterRow
	idle    *[numTargets]idleResult
}

func (rs *results) add(section string, r []row) {
	if rs.rows == nil {
		rs.rows = map[string][]row{}
	}
	rs.rows[section] = r
}

// find returns the row of test at pipeline depth p in section.
func (rs *results) find(section, test, p string) (row, bool) {
	for _, r := range rs.rows[section] {
		if r.test == test && r.pipeline == p {
			return r, true
		}
	}
	return row{}, false
}

// check is one line of the targets table.
type check struct {
	target, row, measured, want string
	met                         string // "yes", "no", or "-" when not measured
}

// targetChecks compares the run with the performance targets: throughput
// against nutcracker's, CPU per request against nutcracker's, idle memory
// against nutcracker's growth, large values against direct Redis, and RESP3
// against RESP2 through shardproxy.
func targetChecks(rs *results) []check {
	var out []check
	rpsRatio := func(target, section, test, p string, min float64, p99 bool) {
		r, ok := rs.find(section, test, p)
		c := check{target: target, row: rowName(test, p), want: fmt.Sprintf("≥ %.2f", min), met: "-"}
		if p99 {
			c.want += ", p99 ≤ nutcracker's"
		}
		if ok {
			n, s := r.cells[nutcracker], r.cells[shardproxy]
			if valid := okPair(n, s); valid {
				v := s.res.rps / n.res.rps
				c.measured = fmt.Sprintf("%.2f", v)
				met := v >= min
				if p99 && n.res.hasLatency && s.res.hasLatency {
					c.measured += fmt.Sprintf(", p99 %.3f vs %.3f ms", s.res.p99, n.res.p99)
					met = met && s.res.p99 <= n.res.p99
				}
				c.met = yesNo(met)
			}
		}
		out = append(out, c)
	}
	cpuRatio := func(target, section, test, p string, limit float64) {
		r, ok := rs.find(section, test, p)
		c := check{target: target, row: rowName(test, p), want: fmt.Sprintf("≤ %.2f", limit), met: "-"}
		if ok {
			nc, nok := r.cells[nutcracker].cpuPerReq()
			sc, sok := r.cells[shardproxy].cpuPerReq()
			if nok && sok && nc > 0 {
				c.measured = fmt.Sprintf("%.2f", sc/nc)
				c.met = yesNo(sc/nc <= limit)
			}
		}
		out = append(out, c)
	}
	for _, t := range []string{"set", "get"} {
		rpsRatio("P=16 SET/GET vs nutcracker", "redis", t, "16", 1.7, false)
	}
	rpsRatio("P=16 MSET vs nutcracker", "redis", "mset", "16", 2.5, true)
	for _, r := range rs.rows["redis"] {
		if r.pipeline == "1" {
			rpsRatio("P=1 vs nutcracker", "redis", r.test, "1", 1.15, true)
		}
	}
	rpsRatio("P=1 MGET of 10 keys vs nutcracker", "redis", "mget 10 keys", "1", 1.5, false)
	for _, r := range rs.rows["memcache"] {
		rpsRatio("memcslap vs nutcracker", "memcache", r.test, r.pipeline, 1.3, false)
	}
	for _, r := range rs.rows["redis"] {
		limit := 1.0
		if r.pipeline == "16" {
			limit = 0.6
		}
		cpuRatio("CPU per request vs nutcracker", "redis", r.test, r.pipeline, limit)
	}
	if rs.idle != nil {
		n, s := rs.idle[nutcracker], rs.idle[shardproxy]
		c := check{target: "idle connections: RSS growth vs nutcracker's", row: "after PING", want: "≤ 1.50", met: "-"}
		if np := n.perConn(n.ping); np > 0 {
			v := s.perConn(s.ping) / np
			c.measured = fmt.Sprintf("%.2f (%.2f vs %.2f KB/conn)", v, s.perConn(s.ping), np)
			c.met = yesNo(v <= 1.5)
		}
		out = append(out, c)
	}
	for _, r := range rs.rows["large"] {
		c := check{target: "large values vs direct Redis", row: rowName(r.test, r.pipeline), want: "≥ 0.90", met: "-"}
		d, s := r.cells[direct], r.cells[shardproxy]
		if okPair(d, s) {
			c.measured = fmt.Sprintf("%.2f", s.res.rps/d.res.rps)
			if h := r.cells[hop]; okPair(d, h) {
				c.measured += fmt.Sprintf(" (bare hop %.2f)", h.res.rps/d.res.rps)
			}
			c.met = yesNo(s.res.rps/d.res.rps >= 0.9)
		}
		out = append(out, c)
	}
	return append(out, resp3Checks(rs.resp3)...)
}

// renderTargets formats the checks as a Markdown table with a count.
func renderTargets(checks []check) string {
	var lines [][]string
	met, measured := 0, 0
	for _, c := range checks {
		lines = append(lines, []string{c.target, c.row, c.measured, c.want, c.met})
		if c.met != "-" {
			measured++
			if c.met == "yes" {
				met++
			}
		}
	}
	text := markdown("Targets: shardproxy against nutcracker (direct Redis for large values, its RESP2 runs for RESP3)",
		[]string{"target", "row", "measured ratio", "required", "met"}, lines)
	return text + fmt.Sprintf("%d of %d measured targets met\n\n", met, measured)
}

func rowName(test, p string) string {
	if p == "-" || p == "" {
		return test
	}
	return strings.TrimSpace(test) + " P=" + p
}

func okPair(a, b cell) bool { return ok(a) && ok(b) && a.res.rps > 0 && b.res.rps > 0 }

func yesNo(v bool) string {
	if v {
		return "yes"
	}
	return "no"
}
