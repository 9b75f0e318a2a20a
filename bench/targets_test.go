//go:build linux

package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestTargetChecks(t *testing.T) {
	tick := time.Second / time.Duration(clockTicks())
	c := func(rps, p99 float64, cpu time.Duration) cell {
		return cell{ran: true, hasCPU: true, cpu: cpu, res: runResult{rps: rps, p99: p99, hasLatency: true, requests: 1000}}
	}
	var rs results
	rs.add("redis", []row{
		{test: "set", pipeline: "16", cells: [numTargets]cell{c(900, 1, 0), c(100, 2, 100*tick), c(180, 1, 50*tick)}},
		{test: "mset", pipeline: "16", cells: [numTargets]cell{c(900, 1, 0), c(100, 2, 100*tick), c(300, 3, 20*tick)}},
		{test: "get", pipeline: "1", cells: [numTargets]cell{c(900, 1, 0), c(100, 2, 100*tick), c(120, 2, 100*tick)}},
	})
	rs.add("large", []row{{test: "set 1MB", pipeline: "1", cells: [numTargets]cell{c(100, 1, 0), c(50, 1, tick), c(95, 1, tick)}}})
	rs.idle = &[numTargets]idleResult{nutcracker: {conns: 10, before: 100, ping: 120}, shardproxy: {conns: 10, before: 100, ping: 140}}
	got := map[string]string{}
	for _, ch := range targetChecks(&rs) {
		got[ch.target+"|"+ch.row] = ch.met
	}
	want := map[string]string{
		"P=16 SET/GET vs nutcracker|set P=16":                     "yes", // 1.8
		"P=16 SET/GET vs nutcracker|get P=16":                     "-",   // not measured
		"P=16 MSET vs nutcracker|mset P=16":                       "no",  // 3.0, but p99 3 > 2
		"P=1 vs nutcracker|get P=1":                               "yes", // 1.2, p99 equal
		"P=1 MGET of 10 keys vs nutcracker|mget 10 keys P=1":      "-",
		"CPU per request vs nutcracker|set P=16":                  "yes", // 0.5
		"CPU per request vs nutcracker|mset P=16":                 "yes", // 0.2
		"CPU per request vs nutcracker|get P=1":                   "yes", // 1.0
		"idle connections: RSS growth vs nutcracker's|after PING": "no",  // 2.0
		"large values vs direct Redis|set 1MB P=1":                "yes", // 0.95
		"P=16 SET/GET vs direct Redis|set P=16":                   "no",  // 0.2
		"P=1 CPU per request vs redis-server's own|get P=1":       "-",   // direct's CPU not sampled
		"idle connections: KB per parked connection|after PING":   "no",  // 4 KB
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: met %q, want %q", k, got[k], w)
		}
	}
	text := renderTargets(targetChecks(&rs))
	if !strings.Contains(text, "6 of 10 measured targets met") {
		t.Errorf("summary line missing or wrong:\n%s", text)
	}
}

// TestTargetsAgainstDirect checks the targets set against direct Redis:
// rps at P=16 (at least 0.90 × direct's) and CPU per request at P=1 (at
// most the direct redis-server's own), with both figures shown; and the
// same against the bare hop (0.90 × its rps, 1.00 × its CPU per request).
func TestTargetsAgainstDirect(t *testing.T) {
	tick := time.Second / time.Duration(clockTicks())
	c := func(rps float64, cpu time.Duration) cell {
		return cell{ran: true, hasCPU: true, cpu: cpu, res: runResult{rps: rps, requests: 1000}}
	}
	var rs results
	rs.add("redis", []row{
		{test: "set", pipeline: "16", cells: [numTargets]cell{c(1000, 10*tick), c(300, 0), c(900, 10*tick), c(1000, 0)}},
		{test: "get", pipeline: "16", cells: [numTargets]cell{c(1000, 10*tick), c(300, 0), c(899, 10*tick), c(900, 0)}},
		{test: "set", pipeline: "1", cells: [numTargets]cell{c(1000, 10*tick), c(300, tick), c(900, 10*tick), c(500, 12*tick)}},
		{test: "get", pipeline: "1", cells: [numTargets]cell{c(1000, 10*tick), c(300, tick), c(900, 11*tick), c(500, 10*tick)}},
	})
	got := map[string]check{}
	for _, ch := range targetChecks(&rs) {
		got[ch.target+"|"+ch.row] = ch
	}
	perReq := float64((10 * tick).Microseconds()) / 1000
	for k, w := range map[string]check{
		"P=16 SET/GET vs direct Redis|set P=16":             {measured: "0.90", want: "≥ 0.90", met: "yes"},
		"P=16 SET/GET vs direct Redis|get P=16":             {measured: "0.90", want: "≥ 0.90", met: "no"}, // 0.899
		"P=1 CPU per request vs redis-server's own|set P=1": {measured: fmt.Sprintf("1.00 (%.2f vs %.2f µs/req)", perReq, perReq), want: "≤ 1.00", met: "yes"},
		"P=1 CPU per request vs redis-server's own|get P=1": {measured: fmt.Sprintf("1.10 (%.2f vs %.2f µs/req)", 1.1*perReq, perReq), want: "≤ 1.00", met: "no"},
		"P=16 SET/GET vs a bare forwarder|set P=16":         {measured: "0.90", want: "≥ 0.90", met: "yes"},
		"P=16 SET/GET vs a bare forwarder|get P=16":         {measured: "1.00", want: "≥ 0.90", met: "yes"},
		"P=1 CPU per request vs a bare forwarder's|set P=1": {measured: fmt.Sprintf("0.83 (%.2f vs %.2f µs/req)", perReq, 1.2*perReq), want: "≤ 1.00", met: "yes"},
		"P=1 CPU per request vs a bare forwarder's|get P=1": {measured: fmt.Sprintf("1.10 (%.2f vs %.2f µs/req)", 1.1*perReq, perReq), want: "≤ 1.00", met: "no"},
	} {
		g, found := got[k]
		if !found || g.measured != w.measured || g.want != w.want || g.met != w.met {
			t.Errorf("%s: got %+v, want measured %q, required %q, met %q", k, g, w.measured, w.want, w.met)
		}
	}
	// Not measured: the rows are there, with "-".
	for _, k := range []string{"P=16 SET/GET vs direct Redis|get P=16", "P=1 CPU per request vs redis-server's own|set P=1",
		"P=16 SET/GET vs a bare forwarder|set P=16", "P=1 CPU per request vs a bare forwarder's|get P=1"} {
		found := false
		for _, ch := range targetChecks(&results{}) {
			if ch.target+"|"+ch.row == k {
				found = ch.met == "-" && ch.measured == ""
			}
		}
		if !found {
			t.Errorf("%s: no unmeasured row in an empty run", k)
		}
	}
}

// TestIdleTargets checks the two idle rows: growth against nutcracker's,
// and shardproxy's KB per connection against the absolute limit.
func TestIdleTargets(t *testing.T) {
	tests := []struct {
		name        string
		idle        *[numTargets]idleResult
		vs, abs     string // met
		absMeasured string
	}{
		{name: "not run", vs: "-", abs: "-"},
		{name: "under the limit", idle: &[numTargets]idleResult{nutcracker: {conns: 1000, before: 100, ping: 400},
			shardproxy: {conns: 1000, before: 100, ping: 1100}}, vs: "no", abs: "yes", absMeasured: "1.00 KB/conn"},
		{name: "over the limit", idle: &[numTargets]idleResult{nutcracker: {conns: 1000, before: 100, ping: 2100},
			shardproxy: {conns: 1000, before: 100, ping: 1600}}, vs: "yes", abs: "no", absMeasured: "1.50 KB/conn"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := idleChecks(tc.idle)
			if len(cs) != 2 {
				t.Fatalf("%d checks, want 2", len(cs))
			}
			if cs[0].met != tc.vs || cs[1].met != tc.abs || cs[1].measured != tc.absMeasured || cs[1].want != "≤ 1.00 KB" {
				t.Errorf("got %+v", cs)
			}
		})
	}
}
