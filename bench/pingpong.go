//go:build linux

package main

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/shardproxy/shardproxy/codec/resp"
)

// pingElement is what the ping-pong clients push.
const pingElement = "x"

// runPingPong plays trips round trips of BLPOP/LPUSH ping-pong between two
// clients at addr, a job queue's worker and its client: A does BLPOP q1 0
// then LPUSH q2, B does LPUSH q1 then BLPOP q2 0. It measures round trips
// per second and, from B's side, the latency of each round trip (from its
// LPUSH to BLPOP's reply). Every reply must be the one Redis gives.
func runPingPong(ctx context.Context, trips int, addr string) (runResult, error) {
	prefix := "bench:apps:queue:" + strconv.FormatInt(appRun.Add(1), 10)
	q1, q2 := prefix+":1", prefix+":2"
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second+time.Duration(trips)*2*time.Millisecond)
	defer cancel()
	conns, err := dialAll(ctx, addr, 2)
	if err != nil {
		return runResult{}, err
	}
	defer closeAll(conns)
	f := &failOnce{conns: conns}
	defer context.AfterFunc(ctx, func() { f.fail(fmt.Errorf("ping-pong: %w", ctx.Err())) })()
	a, b := newPinger(conns[0], q1, q2), newPinger(conns[1], q2, q1)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range trips {
			if err := a.pop(); err != nil {
				f.fail(fmt.Errorf("round trip %d: A: %w", i+1, err))
				return
			}
			if err := a.push(); err != nil {
				f.fail(fmt.Errorf("round trip %d: A: %w", i+1, err))
				return
			}
		}
	})
	lat := make([]time.Duration, 0, trips)
	start := time.Now()
	for i := range trips {
		t := time.Now()
		err := b.push()
		if err == nil {
			err = b.pop()
		}
		if err != nil {
			f.fail(fmt.Errorf("round trip %d: B: %w", i+1, err))
			break
		}
		lat = append(lat, time.Since(t))
	}
	elapsed := time.Since(start)
	wg.Wait()
	if err := f.failure(); err != nil {
		return runResult{}, err
	}
	slices.Sort(lat)
	return runResult{rps: float64(trips) / elapsed.Seconds(), requests: int64(trips), hasLatency: true,
		p50: percentile(lat, 0.50), p99: percentile(lat, 0.99)}, nil
}

// pinger is one side of the ping-pong: it pops from one list and pushes to
// the other, and knows the replies to expect (each list holds at most one
// element, so LPUSH answers 1).
type pinger struct {
	conn              net.Conn
	r                 *frameReader
	popCmd, pushCmd   []byte
	popWant, pushWant []byte
}

func newPinger(conn net.Conn, from, to string) *pinger {
	popWant := resp.AppendBulkString(resp.AppendBulkString(resp.AppendArray(nil, 2), from), pingElement)
	return &pinger{conn: conn, r: newFrameReader(conn),
		popCmd: command("BLPOP", from, "0"), pushCmd: command("LPUSH", to, pingElement),
		popWant: popWant, pushWant: resp.AppendInt(nil, 1)}
}

// pop waits for the element on its list.
func (p *pinger) pop() error { return p.call("BLPOP", p.popCmd, p.popWant) }

// push puts an element on the other side's list.
func (p *pinger) push() error { return p.call("LPUSH", p.pushCmd, p.pushWant) }

func (p *pinger) call(name string, cmd, want []byte) error {
	if _, err := p.conn.Write(cmd); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return p.r.expect(name, want)
}
