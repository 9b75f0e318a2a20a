//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The cluster section measures shardproxy's cluster pool (redis_cluster:
// true) in front of a Redis Cluster of its own against the same load sent
// straight to the cluster by cluster-aware clients: redis-benchmark
// --cluster, and go-redis's ClusterClient driven by the bench's own load
// generator (goLoad), which also runs through the proxy with a plain
// client so that each client is set against itself. CPU per request counts
// the cluster's nodes, and the proxy process when the load goes through it.

// clusterClients is the number of client connections of every cluster run,
// as -c 50 of the Redis section.
const clusterClients = 50

// clusterKeyspace is -r of every cluster run.
const clusterKeyspace = 1000000

// clusterBenchLonger is how many times more requests the redis-benchmark
// runs of a SET or GET row send than the go-redis runs. redis-benchmark
// --cluster runs one thread per primary, and a thread notices that all
// requests are done only on its 250 ms progress timer: the run's time is
// rounded up to that step, which would lower direct's rps by a quarter on
// a run of one second. Four times the requests (two to four seconds here)
// keep the error to a few percent. Both legs of the row send the same, with
// the same threads.
const clusterBenchLonger = 4

// clusterCase is one test at one pipeline depth of the cluster section.
type clusterCase struct {
	test          string // set, get or mset (10 keys)
	pipeline      int
	requests      int // of a go-redis run
	benchRequests int // of a redis-benchmark run
}

// clusterCases lists SET, GET and MSET at P=1 and at P=16 (5 × n requests,
// as the Redis rows; redis-benchmark sends clusterBenchLonger times more
// for SET and GET); -quick keeps SET at P=1, n requests.
func clusterCases(n int, quick bool) []clusterCase {
	if quick {
		return []clusterCase{{test: "set", pipeline: 1, requests: n, benchRequests: n}}
	}
	var cases []clusterCase
	for _, p := range []int{1, 16} {
		reqs := n
		if p > 1 {
			reqs = 5 * n
		}
		for _, t := range []string{"set", "get", "mset"} {
			c := clusterCase{test: t, pipeline: p, requests: reqs, benchRequests: reqs}
			if t != "mset" { // redis-benchmark's MSET runs through the proxy only
				c.benchRequests *= clusterBenchLonger
			}
			cases = append(cases, c)
		}
	}
	return cases
}

// redisCase is the case as redis-benchmark runs it, with as many threads
// as primaries, which --cluster gives the direct runs on its own: so the
// runs through the proxy have the same client, and the same 250 ms step.
func (c clusterCase) redisCase(cluster bool) redisCase {
	return redisCase{label: c.test, test: c.test, want: strings.ToUpper(c.test), pipeline: c.pipeline,
		clients: clusterClients, requests: c.benchRequests, keyspace: clusterKeyspace, cluster: cluster,
		threads: clusterPrimaries}
}

// goLoad is the case as the bench's go-redis load generator runs it.
func (c clusterCase) goLoad(cluster bool) goLoad {
	return goLoad{test: c.test, pipeline: c.pipeline, clients: clusterClients, requests: c.requests,
		keyspace: clusterKeyspace, cluster: cluster}
}

// clusterRow is one test at one depth with one client, straight to the
// cluster and through shardproxy.
type clusterRow struct {
	test, pipeline string
	client         string // redis-benchmark or go-redis
	direct, proxy  cell
	directNA       string // why direct was not measured ("" when it was)
	proxyNA        bool   // the proxy under test is not shardproxy (a nutcracker standing in)
}

// clusterSection starts a Redis Cluster and, when the proxy under test is
// shardproxy, a shardproxy with one cluster pool in front of it, then
// measures the cases. A failed run fails its cell, the table lists its
// error under it, and the section goes on.
func (b *bench) clusterSection(title string, cases []clusterCase) (string, error) {
	var rows []clusterRow
	defer func() { b.results.cluster = rows }()
	b.progress("starting a Redis Cluster of %d primaries", clusterPrimaries)
	rc, err := startRedisCluster(b.ctx, b.procs, "cluster")
	if err != nil {
		return "", err
	}
	proxyNA := !isShardproxy(b.o.proxyBin)
	var pid int
	var addr string
	if !proxyNA {
		if pid, addr, err = startClusterProxy(b.ctx, b.procs, b.o, rc); err != nil {
			return "", err
		}
	}
	for _, c := range cases {
		rs, err := b.measureClusterCase(c, rc, pid, addr)
		rows = append(rows, rs...)
		if err != nil {
			return renderCluster(title, rows), err
		}
	}
	return renderCluster(title, rows), nil
}

// measureClusterCase runs case c with redis-benchmark and with go-redis,
// straight to the cluster and through shardproxy (at addr, process pid;
// none when pid is 0), all interleaved, and returns the redis-benchmark row
// and the go-redis row. redis-benchmark --cluster does not send MSET's
// load: it puts one hash tag in every key of a client, so its MSETs never
// span slots; that cell is n/a.
func (b *bench) measureClusterCase(c clusterCase, rc *redisCluster, pid int, addr string) ([]clusterRow, error) {
	p := strconv.Itoa(c.pipeline)
	rb := clusterRow{test: c.test, pipeline: p, client: "redis-benchmark", proxyNA: pid == 0}
	gr := clusterRow{test: c.test, pipeline: p, client: "go-redis", proxyNA: pid == 0}
	if c.test == "mset" {
		rb.directNA = "redis-benchmark --cluster tags all keys of a client alike: its MSETs never span slots"
	}
	bench := func(rc redisCase) runner {
		return func(ctx context.Context, addr string) (runResult, error) { return runRedisBenchmark(ctx, rc, addr) }
	}
	seed := rc.addrs[0]
	var legs []leg
	var cells []*cell
	add := func(name, addr string, pid int, fn runner, into *cell) {
		legs = append(legs, leg{name: name, addr: addr, pid: pid, more: rc.pids, fn: fn})
		cells = append(cells, into)
	}
	if pid != 0 {
		add("shardproxy redis-benchmark", addr, pid, bench(c.redisCase(false)), &rb.proxy)
	}
	if rb.directNA == "" {
		add("direct redis-benchmark --cluster", seed, 0, bench(c.redisCase(true)), &rb.direct)
	}
	if pid != 0 {
		add("shardproxy go-redis", addr, pid, c.goLoad(false).run, &gr.proxy)
	}
	add("direct go-redis ClusterClient", seed, 0, c.goLoad(true).run, &gr.direct)
	measured, err := b.measureLegs("cluster "+c.test, p, legs)
	for i, m := range measured {
		*cells[i] = m
	}
	return []clusterRow{rb, gr}, err
}

// startClusterProxy starts the proxy under test with one cluster pool whose
// seeds are all of rc's nodes, and waits until it serves every slot.
func startClusterProxy(ctx context.Context, p *procs, o *options, rc *redisCluster) (int, string, error) {
	listen, err := p.freePort()
	if err != nil {
		return 0, "", err
	}
	stats, err := p.freePort()
	if err != nil {
		return 0, "", err
	}
	addr := addrOf(listen)
	conf := filepath.Join(p.dir, "cluster-proxy.yml")
	if err := os.WriteFile(conf, []byte(clusterPoolYAML(addr, rc.addrs)), 0o644); err != nil {
		return 0, "", fmt.Errorf("cluster proxy config: %w", err)
	}
	logFile := filepath.Join(p.dir, "cluster-proxy.log")
	args := append([]string{"-c", conf, "-s", strconv.Itoa(stats), "-a", "127.0.0.1", "-o", logFile}, o.proxyFlags...)
	cmd, err := p.start("cluster-proxy.out", o.proxyBin, args...)
	if err != nil {
		return 0, "", err
	}
	for _, a := range []string{addr, addrOf(stats)} {
		if err = waitListening(cmd, a, 10*time.Second); err != nil {
			break
		}
	}
	if err == nil {
		err = waitClusterPool(ctx, addr, 15*time.Second)
	}
	if err != nil {
		return 0, "", fmt.Errorf("cluster proxy: %w\n%s%s", err, tail(readFile(logFile), 10),
			tail(readFile(filepath.Join(p.dir, "cluster-proxy.out")), 10))
	}
	return cmd.Process.Pid, addr, nil
}

// clusterPoolYAML is the cluster pool: the same server_connections and
// timeout as the Redis section's pools, the nodes as seeds.
func clusterPoolYAML(listen string, seeds []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "bench_cluster:\n  listen: %s\n  redis: true\n  redis_cluster: true\n", listen)
	b.WriteString("  server_connections: 1\n  timeout: 10000\n  servers:\n")
	for _, s := range seeds {
		fmt.Fprintf(&b, "    - %s:1\n", s)
	}
	return b.String()
}

// waitClusterPool waits until a cluster pool at addr answers a GET of keys
// in 64 spread slots with no error: it has a slot map covering them.
func waitClusterPool(ctx context.Context, addr string, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1})
	defer c.Close()
	for i := 0; i < 64; {
		err := c.Get(ctx, fmt.Sprintf("ready:%d", i)).Err()
		if err == nil || errors.Is(err, redis.Nil) {
			i++
			continue
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster pool at %s not ready: %w", addr, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}
