//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// memcslapClients is the number of memcslap threads (one connection each).
const memcslapClients = 50

// memcacheTests returns the memcslap tests to run.
func memcacheTests(quick bool) []string {
	if quick {
		return []string{"set"}
	}
	return []string{"set", "get"}
}

var (
	// "Time to get     100000 keys by   50 threads:     1.318 seconds."
	memcslapRun = regexp.MustCompile(`Time to (\w+)\s+(\d+) keys by\s+(\d+) threads:\s+([0-9.]+) seconds`)
	// "Time to set       2000 keys:                     0.109 seconds." (the load before a get test)
	memcslapLoad = regexp.MustCompile(`Time to set\s+(\d+) keys:\s+([0-9.]+) seconds`)
)

// runMemcslap runs memcslap test (get or set) with about n operations in all
// against addr. memcslap exits 0 even when every request failed, so any
// "error" in its output counts as a failure.
func runMemcslap(ctx context.Context, test string, n int, addr string) (runResult, error) {
	perThread := max(n/memcslapClients, 1)
	args := []string{"--servers=" + addr, "--concurrency=" + strconv.Itoa(memcslapClients),
		"--execute-number=" + strconv.Itoa(perThread), "--test=" + test}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second+time.Duration(n)*300*time.Microsecond)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "memcslap", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runErr := cmd.Run()
	if ctx.Err() != nil {
		return runResult{}, fmt.Errorf("memcslap %s: %w", strings.Join(args, " "), ctx.Err())
	}
	if msg := memcslapErrors(out.Bytes()); runErr != nil || msg != "" {
		return runResult{}, runFailure("memcslap", args, runErr, msg)
	}
	res, err := parseMemcslap(out.Bytes(), test)
	if err != nil {
		return runResult{}, fmt.Errorf("memcslap %s: %w", strings.Join(args, " "), err)
	}
	return res, nil
}

// memcslapErrors returns the first lines of memcslap output that mention an
// error or a failure, and how many there were.
func memcslapErrors(out []byte) string {
	var errs []string
	count := 0
	for _, line := range strings.Split(string(out), "\n") {
		if l := strings.ToLower(line); strings.Contains(l, "error") || strings.Contains(l, "fail") {
			count++
			if len(errs) < 2 {
				errs = append(errs, strings.TrimSpace(line))
			}
		}
	}
	if count > len(errs) {
		errs = append(errs, fmt.Sprintf("(%d error lines in all)", count))
	}
	return strings.Join(errs, "; ")
}

// parseMemcslap reads the operation count and wall time of the test from
// memcslap output; requests also counts the load phase of a get test.
func parseMemcslap(out []byte, test string) (runResult, error) {
	m := memcslapRun.FindSubmatch(out)
	if m == nil {
		return runResult{}, errors.New("no \"Time to ... keys by ... threads\" line")
	}
	if string(m[1]) != test {
		return runResult{}, fmt.Errorf("ran %q, want %q", m[1], test)
	}
	ops, err := strconv.ParseInt(string(m[2]), 10, 64)
	if err != nil {
		return runResult{}, fmt.Errorf("operation count: %w", err)
	}
	secs, err := strconv.ParseFloat(string(m[4]), 64)
	if err != nil {
		return runResult{}, fmt.Errorf("seconds: %w", err)
	}
	if ops <= 0 || secs <= 0 {
		return runResult{}, fmt.Errorf("%d operations in %.3f s: run too short or failed", ops, secs)
	}
	res := runResult{rps: float64(ops) / secs, requests: ops}
	if l := memcslapLoad.FindSubmatch(out); l != nil {
		loaded, err := strconv.ParseInt(string(l[1]), 10, 64)
		if err != nil {
			return runResult{}, fmt.Errorf("load count: %w", err)
		}
		if loaded <= 0 {
			return runResult{}, errors.New("load phase stored no keys")
		}
		res.requests += loaded
	}
	return res, nil
}

// memcacheSection measures memcslap tests on every target, interleaved per row.
func (b *bench) memcacheSection(title string) (string, error) {
	var rows []row
	defer func() { b.results.add("memcache", rows) }()
	for _, test := range memcacheTests(b.o.quick) {
		r, err := b.measureRow(test, "-", b.cl.memcacheEndpoints(), func(ctx context.Context, addr string) (runResult, error) {
			return runMemcslap(ctx, test, b.o.n, addr)
		})
		rows = append(rows, r)
		if err != nil {
			return renderThroughput(title, rows), err
		}
	}
	return renderThroughput(title, rows), nil
}
