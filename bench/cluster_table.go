//go:build linux

package main

import (
	"fmt"
	"strings"
	"time"
)

var clusterHeader = []string{
	"test", "P", "client", "direct rps", "shardproxy rps", "proxy/direct",
	"p50 ms direct", "p50 ms proxy", "p99 ms direct", "p99 ms proxy",
	"CPU µs/req direct (nodes)", "CPU µs/req proxy (proxy+nodes)", "of which proxy", "CPU proxy/direct",
}

// perReq is d in microseconds per request of c's run.
func perReq(c cell, d time.Duration) (float64, bool) {
	if !ok(c) || !c.hasCPU || c.res.requests <= 0 {
		return 0, false
	}
	return float64(d.Microseconds()) / float64(c.res.requests), true
}

// renderCluster formats the cluster rows as a Markdown table, then what the
// columns mean, why a cell is n/a, and the error of every failed cell.
func renderCluster(title string, rows []clusterRow) string {
	var lines [][]string
	var notes, failed []string
	seen := map[string]bool{} // tests whose n/a is explained
	for _, r := range rows {
		d, s := r.direct, r.proxy
		dc, dok := perReq(d, d.moreCPU)
		st, stok := perReq(s, s.cpu+s.moreCPU)
		sp, spok := perReq(s, s.cpu)
		line := []string{r.test, r.pipeline, r.client, rps(d), rps(s), ratio(s.res.rps, d.res.rps, okPair(s, d)),
			latency(d, d.res.p50), latency(s, s.res.p50), latency(d, d.res.p99), latency(s, s.res.p99),
			cpuNum(dc, dok, d.coarse), cpuNum(st, stok, s.coarse), cpuNum(sp, spok, s.coarse), ratio(st, dc, dok && stok)}
		if r.directNA != "" {
			for _, i := range []int{3, 5, 6, 8, 10, 13} {
				line[i] = "n/a"
			}
			if !seen[r.test] {
				seen[r.test] = true
				notes = append(notes, fmt.Sprintf("- %s, %s, direct: n/a, %s.\n", r.test, r.client, r.directNA))
			}
		}
		if r.proxyNA {
			for _, i := range []int{4, 5, 7, 9, 11, 12, 13} {
				line[i] = "n/a"
			}
		}
		lines = append(lines, line)
		for _, f := range []struct {
			name string
			c    cell
		}{{"direct", d}, {"shardproxy", s}} {
			if f.c.err != nil {
				failed = append(failed, fmt.Sprintf("- %s %s on %s failed: %v\n", rowName(r.test, r.pipeline), r.client, f.name, f.c.err))
			}
		}
	}
	text := strings.TrimSuffix(markdown(title, clusterHeader, lines), "\n")
	text += fmt.Sprintf("\nredis-benchmark rows: direct is `redis-benchmark --cluster` to the nodes (one thread per primary), "+
		"proxy the same command without `--cluster`, with `--threads %d`, to shardproxy's cluster pool. go-redis rows:", clusterPrimaries) +
		" the bench's load generator, direct with go-redis's " +
		"ClusterClient (an MSET is sent as one MSET per slot), proxy with a plain client (one MSET of 10 keys, which " +
		"the proxy splits per slot). CPU counts the cluster's nodes and, through the proxy, the proxy process; not the " +
		"load generators. predixy, the issue's outside reference, is not measured: it is not installable here.\n"
	if len(rows) > 0 && rows[0].proxyNA {
		text += "shardproxy: n/a, the proxy under test is not shardproxy (only shardproxy serves a Redis Cluster).\n"
	}
	text += strings.Join(notes, "")
	if len(failed) > 0 {
		text += "\n" + strings.Join(failed, "")
	}
	return text + "\n"
}
