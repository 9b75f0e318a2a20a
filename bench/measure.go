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

// leg is one column of a row: an address, the process whose CPU is sampled
// around each run (0 for none), and the run itself.
type leg struct {
	name string // in progress and failure lines
	addr string
	pid  int
	more []int // further processes whose CPU is sampled apart (a cluster's nodes)
	fn   runner
}

// measureRow runs fn on direct, nutcracker and shardproxy (and the bare hop
// when ep has one), sampling the CPU of each one's process in ep, as
// measureLegs does.
func (b *bench) measureRow(test, pipeline string, ep endpoints, fn runner) (row, error) {
	targets := []target{direct, nutcracker, shardproxy}
	if ep.addr[hop] != "" {
		targets = append(targets, hop)
	}
	legs := make([]leg, len(targets))
	for i, t := range targets {
		legs[i] = leg{name: targetNames[t], addr: ep.addr[t], pid: ep.pid[t], fn: fn}
	}
	cells, err := b.measureLegs(test, pipeline, legs)
	r := row{test: test, pipeline: pipeline}
	for i, t := range targets {
		r.cells[t] = cells[i]
	}
	return r, err
}

// measureLegs runs every leg -rounds times, reversing the order every other
// round so that drift hits all legs alike, and returns one merged cell per
// leg. A failed run is recorded and the row goes on, unless the sampled
// process died or the bench was interrupted.
func (b *bench) measureLegs(test, pipeline string, legs []leg) ([]cell, error) {
	runs := make([][]cell, len(legs))
	finish := func(err error) ([]cell, error) {
		cells := make([]cell, len(legs))
		for i := range legs {
			cells[i] = merge(runs[i])
		}
		return cells, err
	}
	order := make([]int, len(legs))
	for i := range order {
		order[i] = i
	}
	for round := range b.o.rounds {
		for _, i := range order {
			l := legs[i]
			c := b.measure(l)
			runs[i] = append(runs[i], c)
			if c.err == nil {
				b.progress("%s P=%s %s round %d: %.0f rps", test, pipeline, l.name, round+1, c.res.rps)
				continue
			}
			b.failures = append(b.failures, fmt.Sprintf("%s P=%s on %s: %v", test, pipeline, l.name, c.err))
			b.progress("%s P=%s %s: FAILED: %v", test, pipeline, l.name, c.err)
			if err := b.ctx.Err(); err != nil {
				return finish(err)
			}
			for _, pid := range append([]int{l.pid}, l.more...) {
				if pid != 0 && !alive(pid) {
					return finish(fmt.Errorf("%s: pid %d is no longer running", l.name, pid))
				}
			}
		}
		slices.Reverse(order)
	}
	return finish(nil)
}

// measure runs the leg once, sampling the CPU of its process (cell.cpu)
// and of its further processes (cell.moreCPU).
func (b *bench) measure(l leg) cell {
	var pids []int
	if l.pid != 0 {
		pids = []int{l.pid}
	}
	before, cpuErr := cpuOfAll(pids)
	moreBefore, moreErr := cpuOfAll(l.more)
	res, err := l.fn(b.ctx, l.addr)
	c := cell{ran: true, res: res, err: err}
	if len(pids)+len(l.more) > 0 && cpuErr == nil && moreErr == nil {
		after, err1 := cpuOfAll(pids)
		moreAfter, err2 := cpuOfAll(l.more)
		if err1 == nil && err2 == nil {
			c.cpu, c.moreCPU, c.hasCPU = after-before, moreAfter-moreBefore, true
		}
	}
	return c
}

// cpuOfAll returns the CPU time the processes have used so far, summed.
func cpuOfAll(pids []int) (time.Duration, error) {
	var sum time.Duration
	for _, pid := range pids {
		t, err := cpuOf(pid)
		if err != nil {
			return 0, err
		}
		sum += t
	}
	return sum, nil
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
		m.moreCPU += c.moreCPU
		m.res.requests += c.res.requests
	}
	m.res.rps, m.res.p50, m.res.p99 = median(rps), median(p50), median(p99)
	m.coarse = m.cpu+m.moreCPU < coarseTicks*time.Second/time.Duration(clockTicks())
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
