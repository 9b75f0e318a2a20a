//go:build linux

package main

import (
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// The fleet section measures one pool of many servers: fleetServers
// redis-servers (fleetServersQuick with -quick) behind nutcracker and
// behind shardproxy, each with one pool of all of them (the Redis
// section's pool, with more servers), and direct to the first server for
// information. Besides the Redis section's columns it reports each
// proxy's resident memory once started and after the runs. Its servers and
// proxies are its own, stopped at its end.

const (
	fleetServers      = 256
	fleetServersQuick = 16
	// minFleetRatio is the target: through shardproxy, at least this many
	// times nutcracker's rps at P=16 on the fleet.
	minFleetRatio = 2.0
)

// fleetSize is the number of servers in the fleet's pool.
func fleetSize(quick bool) int {
	if quick {
		return fleetServersQuick
	}
	return fleetServers
}

// fleetCases lists SET and GET at P=1 (n requests, for information) and at
// P=16 (5 × n), 50 clients and keys from 10^6, as the Redis section's rows
// of those names; -quick keeps SET at P=16.
func fleetCases(n int, quick bool) []redisCase {
	tests, pipelines := []string{"set", "get"}, []int{1, 16}
	if quick {
		tests, pipelines = tests[:1], pipelines[1:]
	}
	var cases []redisCase
	for _, p := range pipelines {
		reqs := n
		if p > 1 {
			reqs = 5 * n
		}
		for _, t := range tests {
			cases = append(cases, redisCase{label: t, test: t, want: strings.ToUpper(t), pipeline: p,
				clients: 50, requests: reqs, keyspace: 1000000})
		}
	}
	return cases
}

// fleetMemory is the resident memory (KB) of each proxy of the fleet once
// it listens and after the runs (0 when not measured).
type fleetMemory struct {
	servers        int
	started, after [numTargets]int64
	// anon is the anonymous part of after: private memory, without the
	// pages of the binary (a Go binary's text and tables, about 10 MB
	// resident, are page cache shared by every process running it).
	anon [numTargets]int64
}

// fleetSection starts the fleet and its two proxies, measures the cases on
// them and direct to the first server, then reads the proxies' memory, and
// stops all it started.
func (b *bench) fleetSection(cases []redisCase) (string, error) {
	n := fleetSize(b.o.quick)
	title := fmt.Sprintf("Fleet: one pool of %d redis-servers, redis-benchmark -c 50 -r 1000000", n)
	mark := b.procs.mark()
	defer b.procs.stopSince(mark)
	start := time.Now()
	b.progress("fleet: starting %d redis-servers, nutcracker and shardproxy", n)
	ep, err := startFleet(b.procs, b.o, n)
	if err != nil {
		return "", fmt.Errorf("fleet: %w", err)
	}
	b.progress("fleet: started in %v", time.Since(start).Round(time.Millisecond))
	mem := &fleetMemory{servers: n}
	b.results.fleet = mem
	for _, t := range []target{nutcracker, shardproxy} {
		if mem.started[t], err = rssOf(ep.pid[t]); err != nil {
			return "", fmt.Errorf("fleet %s: %w", targetNames[t], err)
		}
	}
	text, err := b.redisSection("fleet", title, cases, ep)
	if err != nil {
		return text, err
	}
	time.Sleep(b.o.settle)
	for _, t := range []target{nutcracker, shardproxy} {
		if mem.after[t], mem.anon[t], err = memoryOf(ep.pid[t]); err != nil {
			return text, fmt.Errorf("fleet %s: %w", targetNames[t], err)
		}
	}
	b.progress("fleet: measured in %v", time.Since(start).Round(time.Millisecond))
	return text + renderFleetMemory(*mem), nil
}

// startFleet starts n redis-servers, then nutcracker and shardproxy each
// with one pool of all of them, and returns their endpoints: direct is the
// first server.
func startFleet(p *procs, o *options, n int) (endpoints, error) {
	var ep endpoints
	ports, pids, err := startBackends(p, "fleet redis", n, startFleetRedis)
	if err != nil {
		return ep, err
	}
	ep.addr[direct], ep.pid[direct] = addrOf(ports[0]), pids[0]
	for _, t := range []target{nutcracker, shardproxy} {
		bin, flags := proxyCommand(o, t)
		if ep.pid[t], ep.addr[t], _, err = startProxy(p, "fleet-"+targetNames[t], bin, ports, nil, flags...); err != nil {
			return ep, err
		}
	}
	return ep, nil
}

// startFleetRedis starts a redis-server of the fleet, as startRedis does
// with a log of its own.
func startFleetRedis(p *procs, i, port int) (*exec.Cmd, error) {
	return p.start(fmt.Sprintf("fleet-redis%d.log", i), "redis-server", redisArgs(p, port)...)
}

var fleetMemoryHeader = []string{"target", "servers", "RSS started KB", "RSS after the runs KB", "of it anonymous KB"}

// renderFleetMemory formats the proxies' memory as a Markdown table with
// the ratio after the runs.
func renderFleetMemory(m fleetMemory) string {
	var lines [][]string
	for _, t := range []target{nutcracker, shardproxy} {
		lines = append(lines, []string{targetNames[t], fmt.Sprint(m.servers), kbOrDash(m.started[t]), kbOrDash(m.after[t]), kbOrDash(m.anon[t])})
	}
	text := markdown(fmt.Sprintf("Fleet memory: RSS of each proxy with one pool of %d servers", m.servers), fleetMemoryHeader, lines)
	return text + fmt.Sprintf("After the runs, shardproxy/nutcracker: RSS %s, anonymous %s\n\n",
		ratio(float64(m.after[shardproxy]), float64(m.after[nutcracker]), m.after[shardproxy] > 0 && m.after[nutcracker] > 0),
		ratio(float64(m.anon[shardproxy]), float64(m.anon[nutcracker]), m.anon[shardproxy] > 0 && m.anon[nutcracker] > 0))
}

func kbOrDash(v int64) string {
	if v <= 0 {
		return "-"
	}
	return kb(v)
}

// fleetChecks sets shardproxy against nutcracker on the fleet: rps of SET
// and GET at P=16, and memory after the runs. Memory is compared by its
// anonymous part, the memory each proxy costs the machine beyond its
// binary's pages (shared page cache, about 10 MB for a Go binary against
// 2 MB for nutcracker's); the whole RSS is shown beside it.
func fleetChecks(rs *results) []check {
	servers := fleetServers
	if rs.fleet != nil {
		servers = rs.fleet.servers
	}
	var out []check
	for _, t := range []string{"set", "get"} {
		r, found := rs.find("fleet", t, "16")
		c := check{target: "P=16 SET/GET vs nutcracker, one pool of many servers",
			row: fmt.Sprintf("%s (%d servers)", rowName(t, "16"), servers)}
		out = append(out, rpsVs(c, r, found, nutcracker, minFleetRatio, false))
	}
	c := check{target: "proxy memory vs nutcracker's, one pool of many servers",
		row: fmt.Sprintf("memory (%d servers)", servers), want: "< 1.00", met: "-"}
	if m := rs.fleet; m != nil && m.anon[nutcracker] > 0 && m.anon[shardproxy] > 0 {
		v := float64(m.anon[shardproxy]) / float64(m.anon[nutcracker])
		c.measured = fmt.Sprintf("%.2f (anonymous %d vs %d KB; RSS %d vs %d KB)", v, m.anon[shardproxy], m.anon[nutcracker],
			m.after[shardproxy], m.after[nutcracker])
		c.met = yesNo(v < 1)
	}
	return append(out, c)
}
