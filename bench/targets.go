//go:build linux

package main

import (
	"fmt"
	"strings"
)

// results are the measurements of one run that the targets are checked
// against: throughput rows by section ("redis", "memcache", "large",
// "fleet"), the RESP3 rows, the idle connections and the fleet's proxy
// memory, when those sections ran. The apps
// and cluster rows have no target (the cluster target is against
// predixy, which is not installed here); they are kept for the tests.
type results struct {
	rows    map[string][]row
	resp3   []protoRow
	apps    []appRow
	cluster []clusterRow
	idle    *[numTargets]idleResult
	fleet   *fleetMemory
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

// Targets against direct's server, and absolute ones; the others are
// written where they are checked.
const (
	minP16VsDirect = 0.90 // P=16 SET/GET: shardproxy's rps over direct Redis's, at least
	maxP1CPUDirect = 1.00 // P=1 SET/GET: shardproxy's CPU per request over the redis-server's own, at most
	maxIdleKB      = 1.00 // KB per parked client connection of shardproxy after one PING, at most
	maxP1CPUHop    = 1.00 // P=1 SET/GET: shardproxy's CPU per request over the bare hop's, at most
	minP16VsHop    = 0.90 // P=16 SET/GET: shardproxy's rps over the bare hop's, at least
)

// targetChecks compares the run with the performance targets: throughput
// against nutcracker's and direct Redis's, CPU per request against
// nutcracker's and the direct redis-server's own, idle memory against
// nutcracker's growth and a limit, large values against direct Redis, RESP3
// against RESP2 through shardproxy, and a pool of many servers against
// nutcracker.
func targetChecks(rs *results) []check {
	var out []check
	redis := func(name, test, p string, base target, min float64, p99 bool) {
		r, found := rs.find("redis", test, p)
		out = append(out, rpsVs(check{target: name, row: rowName(test, p)}, r, found, base, min, p99))
	}
	cpu := func(name, test, p string, base target, limit float64) {
		r, found := rs.find("redis", test, p)
		out = append(out, cpuVs(check{target: name, row: rowName(test, p)}, r, found, base, limit))
	}
	for _, t := range []string{"set", "get"} {
		redis("P=16 SET/GET vs nutcracker", t, "16", nutcracker, 1.7, false)
	}
	for _, t := range []string{"set", "get"} {
		redis("P=16 SET/GET vs direct Redis", t, "16", direct, minP16VsDirect, false)
	}
	redis("P=16 MSET vs nutcracker", "mset", "16", nutcracker, 2.5, true)
	for _, r := range rs.rows["redis"] {
		if r.pipeline == "1" {
			redis("P=1 vs nutcracker", r.test, "1", nutcracker, 1.15, true)
		}
	}
	redis("P=1 MGET of 10 keys vs nutcracker", "mget 10 keys", "1", nutcracker, 1.5, false)
	for _, r := range rs.rows["memcache"] {
		out = append(out, rpsVs(check{target: "memcslap vs nutcracker", row: rowName(r.test, r.pipeline)}, r, true,
			nutcracker, 1.3, false))
	}
	for _, r := range rs.rows["redis"] {
		limit := 1.0
		if r.pipeline == "16" {
			limit = 0.6
		}
		cpu("CPU per request vs nutcracker", r.test, r.pipeline, nutcracker, limit)
	}
	for _, t := range []string{"set", "get"} {
		cpu("P=1 CPU per request vs redis-server's own", t, "1", direct, maxP1CPUDirect)
	}
	// The two targets against direct Redis above in the form two shared
	// cores can show: against a bare forwarder in the same path (a
	// redis-server on the other side, redis-benchmark and the forwarder
	// sharing the cores), which is what any proxy costs at least.
	for _, t := range []string{"set", "get"} {
		cpu("P=1 CPU per request vs a bare forwarder's", t, "1", hop, maxP1CPUHop)
	}
	for _, t := range []string{"set", "get"} {
		redis("P=16 SET/GET vs a bare forwarder", t, "16", hop, minP16VsHop, false)
	}
	out = append(out, idleChecks(rs.idle)...)
	out = append(out, largeChecks(rs.rows["large"])...)
	out = append(out, resp3Checks(rs.resp3)...)
	return append(out, fleetChecks(rs)...)
}

// rpsVs fills c with shardproxy's rps in r against base's (nutcracker or
// direct): at least min times; with p99, its p99 at most base's too. A row
// not found, or a cell not measured, leaves it "-".
func rpsVs(c check, r row, found bool, base target, min float64, p99 bool) check {
	c.want, c.met = fmt.Sprintf("≥ %.2f", min), "-"
	if p99 {
		c.want += fmt.Sprintf(", p99 ≤ %s's", targetNames[base])
	}
	bc, s := r.cells[base], r.cells[shardproxy]
	if !found || !okPair(bc, s) {
		return c
	}
	v := s.res.rps / bc.res.rps
	c.measured = fmt.Sprintf("%.2f", v)
	met := v >= min
	if p99 && bc.res.hasLatency && s.res.hasLatency {
		c.measured += fmt.Sprintf(", p99 %.3f vs %.3f ms", s.res.p99, bc.res.p99)
		met = met && s.res.p99 <= bc.res.p99
	}
	c.met = yesNo(met)
	return c
}

// cpuVs fills c with shardproxy's CPU per request in r against base's
// process's: nutcracker's, or direct's server's own (then with both
// figures); at most limit times.
func cpuVs(c check, r row, found bool, base target, limit float64) check {
	c.want, c.met = fmt.Sprintf("≤ %.2f", limit), "-"
	bc, bok := r.cells[base].cpuPerReq()
	sc, sok := r.cells[shardproxy].cpuPerReq()
	if !found || !bok || !sok || bc <= 0 {
		return c
	}
	c.measured = fmt.Sprintf("%.2f", sc/bc)
	if base == direct || base == hop {
		c.measured += fmt.Sprintf(" (%.2f vs %.2f µs/req)", sc, bc)
	}
	c.met = yesNo(sc/bc <= limit)
	return c
}

// idleChecks sets shardproxy's memory per idle connection after one PING
// against nutcracker's and against maxIdleKB; "-" when idle did not run.
func idleChecks(idle *[numTargets]idleResult) []check {
	vs := check{target: "idle connections: RSS growth vs nutcracker's", row: "after PING", want: "≤ 1.50", met: "-"}
	abs := check{target: "idle connections: KB per parked connection", row: "after PING",
		want: fmt.Sprintf("≤ %.2f KB", maxIdleKB), met: "-"}
	if idle != nil {
		n, s := idle[nutcracker], idle[shardproxy]
		if np := n.perConn(n.ping); np > 0 {
			v := s.perConn(s.ping) / np
			vs.measured = fmt.Sprintf("%.2f (%.2f vs %.2f KB/conn)", v, s.perConn(s.ping), np)
			vs.met = yesNo(v <= 1.5)
		}
		if s.conns > 0 {
			abs.measured = fmt.Sprintf("%.2f KB/conn", s.perConn(s.ping))
			abs.met = yesNo(s.perConn(s.ping) <= maxIdleKB)
		}
	}
	return []check{vs, abs}
}

// largeChecks sets shardproxy's rps on large values against direct Redis's.
func largeChecks(rows []row) []check {
	var out []check
	for _, r := range rows {
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
	return out
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
	text := markdown("Targets: shardproxy against nutcracker, direct Redis, its own RESP2 runs, or a limit",
		[]string{"target", "row", "measured", "required", "met"}, lines)
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
