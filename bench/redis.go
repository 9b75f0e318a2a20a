//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// redisCase is one redis-benchmark invocation: a built-in test (-t) or a
// custom command, at a pipeline depth.
type redisCase struct {
	label    string   // name in the table
	test     string   // -t test name; empty for a custom command
	command  []string // custom command, e.g. MGET with 10 random keys
	want     string   // first word of the CSV test name to report
	pipeline int
	clients  int
	requests int
	keyspace int  // -r; 0 means one fixed key
	dataSize int  // -d; 0 means redis-benchmark's default
	resp3    bool // -3: HELLO 3 on each connection, RESP3 replies
	cluster  bool // --cluster: addr is a Redis Cluster node, the benchmark spreads over the primaries
	threads  int  // --threads; 0 for none (one thread; --cluster makes one per primary)
	hop      bool // the bare hop is measured too, when the section's endpoints have one
}

// mget10 is MGET of ten random keys, sent as a custom command.
func mget10() []string {
	cmd := []string{"MGET"}
	for range 10 {
		cmd = append(cmd, "key:__rand_int__")
	}
	return cmd
}

// redisCases lists the throughput rows: every test at P=1, then at P=16.
func redisCases(n int, quick bool) []redisCase {
	if quick {
		return []redisCase{{label: "set", test: "set", want: "SET", pipeline: 1, clients: 50, requests: n, keyspace: 1000000}}
	}
	var cases []redisCase
	for _, p := range []int{1, 16} {
		reqs := n
		if p > 1 {
			reqs = 5 * n // pipelined runs are short: make them long enough to measure
		}
		for _, t := range []string{"set", "get", "lpush", "lrange_100", "mset"} {
			// SET and GET, the rows with targets against direct Redis,
			// also run through the bare hop: what a proxy costs at least.
			cases = append(cases, redisCase{label: t, test: t, want: strings.ToUpper(t), pipeline: p,
				clients: 50, requests: reqs, keyspace: 1000000, hop: t == "set" || t == "get"})
		}
		cases = append(cases, redisCase{label: "mget 10 keys", command: mget10(), want: "MGET", pipeline: p,
			clients: 50, requests: reqs, keyspace: 1000000})
	}
	return cases
}

// largeCases lists SET and GET of 100 KB and 1 MB values on one fixed key.
func largeCases(n int, quick bool) []redisCase {
	sizes := []struct {
		label string
		bytes int
		reqs  int
	}{{"100KB", 100 << 10, max(n/10, 100)}, {"1MB", 1 << 20, max(n/50, 25)}}
	if quick {
		return []redisCase{{label: "set 100KB", test: "set", want: "SET", pipeline: 1, clients: 10, requests: 50, dataSize: 100 << 10, hop: true}}
	}
	var cases []redisCase
	for _, s := range sizes {
		for _, t := range []string{"set", "get"} {
			cases = append(cases, redisCase{label: t + " " + s.label, test: t, want: strings.ToUpper(t),
				pipeline: 1, clients: 10, requests: s.reqs, dataSize: s.bytes, hop: true})
		}
	}
	return cases
}

// args returns the redis-benchmark command line for addr.
func (c redisCase) args(addr string) ([]string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("target address: %w", err)
	}
	a := []string{"-h", host, "-p", port, "-c", strconv.Itoa(c.clients), "-n", strconv.Itoa(c.requests),
		"-P", strconv.Itoa(c.pipeline), "--csv"}
	if c.keyspace > 0 {
		a = append(a, "-r", strconv.Itoa(c.keyspace))
	}
	if c.dataSize > 0 {
		a = append(a, "-d", strconv.Itoa(c.dataSize))
	}
	if c.resp3 {
		a = append(a, "-3")
	}
	if c.cluster {
		a = append(a, "--cluster")
	}
	if c.threads > 0 {
		a = append(a, "--threads", strconv.Itoa(c.threads))
	}
	if c.test != "" {
		return append(a, "-t", c.test), nil
	}
	return append(a, c.command...), nil
}

// runRedisBenchmark runs one case against addr. It fails when redis-benchmark
// exits non-zero, reports an error, or prints no result for the test.
func runRedisBenchmark(ctx context.Context, c redisCase, addr string) (runResult, error) {
	args, err := c.args(addr)
	if err != nil {
		return runResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second+time.Duration(c.requests)*300*time.Microsecond)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "redis-benchmark", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runErr := cmd.Run()
	if msg := benchErrors(stderr.Bytes()); runErr != nil || msg != "" {
		if ctx.Err() != nil {
			return runResult{}, fmt.Errorf("redis-benchmark %s: %w", strings.Join(args, " "), ctx.Err())
		}
		return runResult{}, runFailure("redis-benchmark", args, runErr, msg)
	}
	res, lines, err := parseRedisCSV(stdout.Bytes(), c.want)
	if err != nil {
		return runResult{}, fmt.Errorf("redis-benchmark %s: %w", strings.Join(args, " "), err)
	}
	res.requests = int64(lines) * int64(c.requests)
	return res, nil
}

// benchErrors returns redis-benchmark's error lines (at most three), ignoring
// the warning it prints when a proxy does not answer CONFIG GET.
func benchErrors(stderr []byte) string {
	var errs []string
	for _, line := range strings.Split(string(stderr), "\n") {
		if strings.Contains(line, "Error") || strings.Contains(line, "ERR") {
			errs = append(errs, strings.TrimSpace(line))
		}
	}
	if len(errs) > 3 {
		errs = append(errs[:3], fmt.Sprintf("(%d more)", len(errs)-3))
	}
	return strings.Join(errs, "; ")
}

// parseRedisCSV finds the line of test want (by the first word of its name)
// in redis-benchmark --csv output and returns its figures and the number of
// result lines (each line is one run of -n requests). What precedes the
// CSV header (--cluster lists the primaries first) is skipped.
func parseRedisCSV(out []byte, want string) (runResult, int, error) {
	if i := bytes.Index(out, []byte("\n\"test\",")); i >= 0 && !bytes.HasPrefix(out, []byte("\"test\",")) {
		out = out[i+1:]
	}
	recs, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil {
		return runResult{}, 0, fmt.Errorf("csv: %w", err)
	}
	if len(recs) < 2 || len(recs[0]) < 7 || recs[0][0] != "test" {
		return runResult{}, 0, errors.New("csv: no results")
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for _, name := range []string{"rps", "p50_latency_ms", "p99_latency_ms"} {
		if _, ok := col[name]; !ok {
			return runResult{}, 0, fmt.Errorf("csv: no column %s", name)
		}
	}
	var res runResult
	found := false
	for _, r := range recs[1:] {
		if len(r) != len(recs[0]) || strings.Fields(r[0] + " ")[0] != want {
			continue
		}
		f := make([]float64, 3)
		for i, name := range []string{"rps", "p50_latency_ms", "p99_latency_ms"} {
			if f[i], err = strconv.ParseFloat(r[col[name]], 64); err != nil {
				return runResult{}, 0, fmt.Errorf("csv %s of %s: %w", name, r[0], err)
			}
		}
		res, found = runResult{rps: f[0], p50: f[1], p99: f[2], hasLatency: true}, true
	}
	if !found || res.rps <= 0 {
		return runResult{}, 0, fmt.Errorf("csv: no result for %s", want)
	}
	return res, len(recs) - 1, nil
}

// redisSection measures the cases on every target of ep, interleaved per
// row. The rows are kept under section for the targets table.
func (b *bench) redisSection(section, title string, cases []redisCase, ep endpoints) (string, error) {
	var rows []row
	defer func() { b.results.add(section, rows) }()
	for _, c := range cases {
		ep := ep
		if !c.hop {
			ep.addr[hop] = ""
		}
		r, err := b.measureRow(c.label, strconv.Itoa(c.pipeline), ep, func(ctx context.Context, addr string) (runResult, error) {
			return runRedisBenchmark(ctx, c, addr)
		})
		rows = append(rows, r)
		if err != nil {
			return renderThroughput(title, rows), err
		}
	}
	return renderThroughput(title, rows), nil
}
