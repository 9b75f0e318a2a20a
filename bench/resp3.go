//go:build linux

package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// RESP3 target: through shardproxy, a RESP3 run does at least minRESP3Ratio
// of the requests per second of the same RESP2 run, for at most
// maxRESP3CPURatio of its CPU per request.
const (
	minRESP3Ratio    = 0.95
	maxRESP3CPURatio = 1.05
)

// protoRow is one RESP3 row: redis-benchmark -3 on direct Redis and through
// shardproxy, and the same test in RESP2 through shardproxy, measured in the
// same rounds so that RESP3/RESP2 compares runs taken side by side.
type protoRow struct {
	test, pipeline string
	direct         cell // RESP3, direct to one server
	proxy          cell // RESP3 through shardproxy
	proxyRESP2     cell // RESP2 through shardproxy
	proxyNA        bool // the proxy under test is not shardproxy (a nutcracker standing in): no RESP3
}

// resp3Cases lists the RESP3 rows: SET and GET at P=1 and P=16, as the RESP2
// rows of the same names run them (SET at P=1 alone with -quick).
func resp3Cases(n int, quick bool) []redisCase {
	tests, pipelines := []string{"set", "get"}, []int{1, 16}
	if quick {
		tests, pipelines = tests[:1], pipelines[:1]
	}
	var cases []redisCase
	for _, p := range pipelines {
		reqs := n
		if p > 1 {
			reqs = 5 * n
		}
		for _, t := range tests {
			cases = append(cases, redisCase{label: t, test: t, want: strings.ToUpper(t), pipeline: p,
				clients: 50, requests: reqs, keyspace: 1000000, resp3: true})
		}
	}
	return cases
}

// resp3Section measures the RESP3 rows. nutcracker is left out: it speaks
// RESP2 only (HELLO is unknown to it). A run the proxy refuses (-NOPROTO to
// HELLO 3) fails its cell, and the table lists the error under it.
func (b *bench) resp3Section(title string, cases []redisCase) (string, error) {
	var rows []protoRow
	defer func() { b.results.resp3 = rows }()
	for _, c := range cases {
		r, err := b.measureProtoRow(c)
		rows = append(rows, r)
		if err != nil {
			return renderRESP3(title, rows), err
		}
	}
	return renderRESP3(title, rows), nil
}

// measureProtoRow runs case c (a RESP3 case) on direct Redis and through
// shardproxy, and its RESP2 twin through shardproxy, interleaved.
func (b *bench) measureProtoRow(c redisCase) (protoRow, error) {
	r := protoRow{test: c.label, pipeline: strconv.Itoa(c.pipeline), proxyNA: !b.o.proxyRESP3}
	resp2 := c
	resp2.resp3 = false
	run := func(c redisCase) runner {
		return func(ctx context.Context, addr string) (runResult, error) { return runRedisBenchmark(ctx, c, addr) }
	}
	legs := []leg{{name: "direct RESP3", addr: b.cl.redis[direct], fn: run(c)}}
	if !r.proxyNA {
		pid, addr := b.cl.pid[shardproxy], b.cl.redis[shardproxy]
		legs = append(legs, leg{name: "shardproxy RESP3", addr: addr, pid: pid, fn: run(c)},
			leg{name: "shardproxy RESP2", addr: addr, pid: pid, fn: run(resp2)})
	}
	cells, err := b.measureLegs(r.test, r.pipeline, legs)
	r.direct = cells[0]
	if !r.proxyNA {
		r.proxy, r.proxyRESP2 = cells[1], cells[2]
	}
	return r, err
}

var resp3Header = []string{
	"test", "P", "direct rps", "nutcracker rps", "shardproxy rps", "proxy/direct", "p50 ms proxy", "p99 ms proxy",
	"CPU µs/req proxy", "proxy RESP2 rps", "RESP3/RESP2 rps", "CPU µs/req proxy RESP2", "CPU RESP3/RESP2",
}

// renderRESP3 formats the RESP3 rows as a Markdown table, then a note on
// what was not measured and the error of every failed cell.
func renderRESP3(title string, rows []protoRow) string {
	var lines [][]string
	var failed []string
	for _, r := range rows {
		d, s, s2 := r.direct, r.proxy, r.proxyRESP2
		sc, sok := s.cpuPerReq()
		s2c, s2ok := s2.cpuPerReq()
		line := []string{r.test, r.pipeline, rps(d), "n/a", rps(s), ratio(s.res.rps, d.res.rps, okPair(s, d)),
			latency(s, s.res.p50), latency(s, s.res.p99), cpuNum(sc, sok, s.coarse),
			rps(s2), ratio(s.res.rps, s2.res.rps, okPair(s, s2)), cpuNum(s2c, s2ok, s2.coarse), ratio(sc, s2c, sok && s2ok)}
		if r.proxyNA {
			for i := 4; i < len(line); i++ {
				line[i] = "n/a"
			}
		}
		lines = append(lines, line)
		for _, f := range []struct {
			name string
			c    cell
		}{{"direct", d}, {"shardproxy", s}, {"shardproxy RESP2", s2}} {
			if f.c.err != nil {
				failed = append(failed, fmt.Sprintf("- %s on %s failed: %v\n", rowName(r.test, r.pipeline), f.name, f.c.err))
			}
		}
	}
	text := strings.TrimSuffix(markdown(title, resp3Header, lines), "\n")
	text += fmt.Sprintf("\nnutcracker: n/a, it speaks RESP2 only. RESP3/RESP2 sets shardproxy's RESP3 run against its RESP2 run "+
		"of the same test, measured in the same rounds (target: rps ≥ %.2f, CPU ≤ %.2f).\n", minRESP3Ratio, maxRESP3CPURatio)
	if len(rows) > 0 && rows[0].proxyNA {
		text += "shardproxy: n/a, the proxy under test is not shardproxy.\n"
	}
	if len(failed) > 0 {
		text += "\n" + strings.Join(failed, "")
	}
	return text + "\n"
}

// resp3Checks compares each RESP3 row's shardproxy run with its RESP2 run:
// requests per second and, when both were measured, CPU per request.
func resp3Checks(rows []protoRow) []check {
	var out []check
	for _, r := range rows {
		c := check{target: "RESP3 vs RESP2 through shardproxy", row: rowName(r.test, r.pipeline),
			want: fmt.Sprintf("rps ≥ %.2f, CPU ≤ %.2f", minRESP3Ratio, maxRESP3CPURatio), met: "-"}
		if okPair(r.proxy, r.proxyRESP2) {
			v := r.proxy.res.rps / r.proxyRESP2.res.rps
			c.measured = fmt.Sprintf("rps %.2f", v)
			met := v >= minRESP3Ratio
			c3, ok3 := r.proxy.cpuPerReq()
			c2, ok2 := r.proxyRESP2.cpuPerReq()
			if ok3 && ok2 && c2 > 0 {
				c.measured += fmt.Sprintf(", CPU %.2f", c3/c2)
				met = met && c3/c2 <= maxRESP3CPURatio
			}
			c.met = yesNo(met)
		}
		out = append(out, c)
	}
	return out
}
