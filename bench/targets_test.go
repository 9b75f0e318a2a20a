//go:build linux

package main

import (
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
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: met %q, want %q", k, got[k], w)
		}
	}
	text := renderTargets(targetChecks(&rs))
	if !strings.Contains(text, "6 of 8 measured targets met") {
		t.Errorf("summary line missing or wrong:\n%s", text)
	}
}
