//go:build linux

package main

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// coarseTicks is the CPU time, in clock ticks, below which a CPU-per-request
// figure is marked as rough.
const coarseTicks = 20

// runner is one load-generator run against addr.
type runner func(ctx context.Context, addr string) (runResult, error)

// measureRow runs fn on direct, nutcracker and shardproxy (and the bare hop
// when addrs has one), -rounds times,
// reversing the order every other round so that drift hits all targets
// alike, and sampling each proxy's CPU time around its runs. A failed run is
// recorded and the row goes on, unless the proxy process died or the bench
// was interrupted.
func (b *bench) measureRow(test, pipeline string, addrs [numTargets]string, fn runner) (row, error) {
	var runs [numTargets][]cell
	finish := func(err error) (row, error) {
		r := row{test: test, pipeline: pipeline}
		for t := range numTargets {
			r.cells[t] = merge(runs[t])
		}
		return r, err
	}
	order := []target{direct, nutcracker, shardproxy}
	if addrs[hop] != "" {
		order = append(order, hop)
	}
	for round := range b.o.rounds {
		for _, t := range order {
			c := b.measure(t, addrs[t], fn)
			runs[t] = append(runs[t], c)
			if c.err == nil {
				b.progress("%s P=%s %s round %d: %.0f rps", test, pipeline, targetNames[t], round+1, c.res.rps)
				continue
			}
			b.failures = append(b.failures, fmt.Sprintf("%s P=%s on %s: %v", test, pipeline, targetNames[t], c.err))
			b.progress("%s P=%s %s: FAILED: %v", test, pipeline, targetNames[t], c.err)
			if err := b.ctx.Err(); err != nil {
				return finish(err)
			}
			if pid := b.cl.pid[t]; pid != 0 && !alive(pid) {
				return finish(fmt.Errorf("%s (pid %d) is no longer running", targetNames[t], pid))
			}
		}
		slices.Reverse(order)
	}
	return finish(nil)
}

// measure runs fn once against target t.
func (b *bench) measure(t target, addr string, fn runner) cell {
	pid := b.cl.pid[t]
	var before time.Duration
	var cpuErr error
	if pid != 0 {
		before, cpuErr = cpuOf(pid)
	}
	res, err := fn(b.ctx, addr)
	c := cell{ran: true, res: res, err: err}
	if pid != 0 && cpuErr == nil {
		if after, err := cpuOf(pid); err == nil {
			c.cpu, c.hasCPU = after-before, true
		}
	}
	return c
}

// merge combines the runs of one target: the median of each of rps, p50 and
// p99, and CPU per request as total CPU over total requests. Any failed run
// makes the merged cell failed.
func merge(runs []cell) cell {
	if len(runs) == 0 {
		return cell{}
	}
	var rps, p50, p99 []float64
	m := cell{ran: true, hasCPU: true}
	m.res.hasLatency = true
	for _, c := range runs {
		if c.err != nil {
			return c
		}
		rps, p50, p99 = append(rps, c.res.rps), append(p50, c.res.p50), append(p99, c.res.p99)
		m.res.hasLatency = m.res.hasLatency && c.res.hasLatency
		m.hasCPU = m.hasCPU && c.hasCPU
		m.cpu += c.cpu
		m.res.requests += c.res.requests
	}
	m.res.rps, m.res.p50, m.res.p99 = median(rps), median(p50), median(p99)
	m.coarse = m.cpu < coarseTicks*time.Second/time.Duration(clockTicks())
	return m
}

// median returns the middle value (the mean of the two middle ones for an
// even count).
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
