//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/shardproxy/shardproxy/hashring"
)

// goLoad is one run of the bench's own load generator, written with
// go-redis: clients goroutines, each sending pipelines of pipeline
// commands (SET, GET or MSET of msetKeys keys) on random keys, like
// redis-benchmark -c clients -P pipeline -r keyspace. Either through a
// proxy with a plain client, or straight to a Redis Cluster with go-redis's
// ClusterClient, which routes each key to its slot's primary itself.
type goLoad struct {
	test     string // "set", "get" or "mset"
	pipeline int
	clients  int
	requests int // in all, spread over the clients
	keyspace int
	cluster  bool // addr is a cluster node: ClusterClient, MSET split per slot
}

// msetKeys is the number of keys of one MSET, as redis-benchmark's -t mset.
const msetKeys = 10

// goValue is every value written: three bytes, redis-benchmark's default -d.
const goValue = "xxx"

// pipeliner is what both clients give: a pipeline to fill and send.
type pipeliner interface {
	Pipeline() redis.Pipeliner
	Close() error
}

// client returns the go-redis client of the run: RESP2 (as redis-benchmark
// speaks it), no CLIENT SETINFO nor maintenance notifications on connect,
// a pool of one connection per goroutine (per node for the cluster
// client), and no retries, so an error reaches the run.
func (l goLoad) client(addr string) pipeliner {
	maint := &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	if l.cluster {
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{addr}, Protocol: 2, DisableIdentity: true,
			PoolSize: l.clients, MaxRetries: -1, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
			MaintNotificationsConfig: maint})
	}
	return redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true,
		PoolSize: l.clients, MaxRetries: -1, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		MaintNotificationsConfig: maint})
}

// run sends the load to addr and returns its requests per second and the
// median and 99th percentile of a pipeline's round trip. It fails at the
// first error reply or connection error (a GET of a missing key is no
// error).
func (l goLoad) run(ctx context.Context, addr string) (runResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second+time.Duration(l.requests)*300*time.Microsecond)
	defer cancel()
	c := l.client(addr)
	defer c.Close()
	perClient := max(l.requests/l.clients/l.pipeline, 1) // pipelines per goroutine
	var (
		ready, done sync.WaitGroup
		start       = make(chan struct{})
		lat         = make([][]time.Duration, l.clients)
		errs        = make([]error, l.clients)
	)
	ready.Add(l.clients)
	done.Add(l.clients)
	for i := range l.clients {
		go func() {
			defer done.Done()
			w := clusterWorker{goLoad: l, rng: rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))}
			errs[i] = w.send(ctx, c) // warm-up: the connections are open before the clock starts
			ready.Done()
			select {
			case <-start:
			case <-ctx.Done():
				return
			}
			if errs[i] == nil {
				lat[i], errs[i] = w.loop(ctx, c, perClient)
			}
			if errs[i] != nil {
				cancel()
			}
		}()
	}
	ready.Wait()
	began := time.Now()
	close(start)
	done.Wait()
	took := time.Since(began)
	if err := errors.Join(errs...); err != nil {
		return runResult{}, fmt.Errorf("go-redis %s P=%d: %w", l.test, l.pipeline, firstErr(errs))
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	reqs := int64(perClient * l.pipeline * l.clients)
	warm := int64(l.pipeline * l.clients) // served too, so in CPU per request
	return runResult{rps: float64(reqs) / took.Seconds(), p50: quantileMS(all, 0.50), p99: quantileMS(all, 0.99),
		hasLatency: true, requests: reqs + warm}, nil
}

// firstErr is the first non-nil error of errs: one goroutine's failure,
// not every goroutine's cancelled context that follows it.
func firstErr(errs []error) error {
	var first error
	for _, err := range errs {
		if err != nil && (first == nil || errors.Is(first, context.Canceled)) {
			first = err
		}
	}
	return first
}

// quantileMS is the q quantile of sorted durations, in milliseconds.
func quantileMS(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(int(q*float64(len(sorted))), len(sorted)-1)
	return float64(sorted[i].Microseconds()) / 1000
}

// clusterWorker is one goroutine of a goLoad with its own random keys.
type clusterWorker struct {
	goLoad
	rng *rand.Rand
	key []byte
}

// loop sends n pipelines and returns each one's round trip.
func (w *clusterWorker) loop(ctx context.Context, c pipeliner, n int) ([]time.Duration, error) {
	lat := make([]time.Duration, 0, n)
	for range n {
		t := time.Now()
		if err := w.send(ctx, c); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t))
	}
	return lat, nil
}

// send fills one pipeline of w.pipeline commands and sends it.
func (w *clusterWorker) send(ctx context.Context, c pipeliner) error {
	p := c.Pipeline()
	for range w.pipeline {
		switch w.test {
		case "set":
			p.Set(ctx, w.randKey(), goValue, 0)
		case "get":
			p.Get(ctx, w.randKey())
		case "mset":
			w.mset(ctx, p)
		default:
			return fmt.Errorf("go-redis load: unknown test %q", w.test)
		}
	}
	cmds, err := p.Exec(ctx)
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	for _, cmd := range cmds {
		if err := cmd.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("%s: %w", cmd.Name(), err)
		}
	}
	return nil
}

// mset queues one MSET of msetKeys random keys: as one command through a
// proxy, which splits it per slot; straight to a cluster, as a cluster-aware
// application must send it, one MSET per slot (a cross-slot MSET fails
// with -CROSSSLOT even when all its slots are on one node).
func (w *clusterWorker) mset(ctx context.Context, p redis.Pipeliner) {
	if !w.cluster {
		args := make([]any, 0, 2*msetKeys)
		for range msetKeys {
			args = append(args, w.randKey(), goValue)
		}
		p.MSet(ctx, args...)
		return
	}
	bySlot := map[int][]any{}
	var order []int
	for range msetKeys {
		k := w.randKey()
		s := hashring.ClusterSlot([]byte(k))
		if _, ok := bySlot[s]; !ok {
			order = append(order, s)
		}
		bySlot[s] = append(bySlot[s], k, goValue)
	}
	for _, s := range order {
		p.MSet(ctx, bySlot[s]...)
	}
}

// randKey is "key:" and a random 12-digit number below the keyspace, as
// redis-benchmark's key:__rand_int__ with -r.
func (w *clusterWorker) randKey() string {
	w.key = append(w.key[:0], "key:"...)
	n := strconv.AppendInt(nil, int64(w.rng.IntN(w.keyspace)), 10)
	for range 12 - len(n) {
		w.key = append(w.key, '0')
	}
	return string(append(w.key, n...))
}
