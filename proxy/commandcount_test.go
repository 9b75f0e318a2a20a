package proxy

import (
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/commands"
	"github.com/shardproxy/shardproxy/pools"
)

// TestCountServed checks the write-time counts of a batch: per command,
// its requests in the latency bucket of the batch's time, their errors
// (an error answer, or a failure without one), and none for a request
// with no answer that did not fail.
func TestCountServed(t *testing.T) {
	ps := &poolStats{outcomes: make([]commandOutcome, commandIDs)}
	bt := &batch{arrived: time.Unix(100, 0)}
	get, set := commands.Lookup([]byte("GET")).ID, commands.Lookup([]byte("SET")).ID
	// GET ok, GET error, SET ok, GET (no answer), SET failed silently.
	bt.answers = []answer{{}, {failed: true}, {}}
	for i, id := range []uint16{get, get, set, get, set} {
		bt.countCommand(ps, id)
		if i < 3 {
			bt.served[i].answer = int32(i)
		}
	}
	bt.failedSilently()
	bt.countServed(ps, bt.arrived.Add(3*time.Millisecond))
	if len(bt.served) != 0 {
		t.Fatalf("%d requests still held after countServed", len(bt.served))
	}
	b := pools.LatencyBucket(3 * time.Millisecond)
	for _, c := range []struct {
		name        string
		id          uint16
		n, errs     int64
		sumDuration time.Duration
	}{{"get", get, 3, 1, 9 * time.Millisecond}, {"set", set, 2, 1, 6 * time.Millisecond}} {
		o := &ps.outcomes[c.id]
		if got := int64(o.buckets[b].Load()); got != c.n {
			t.Errorf("%s: %d in the 3 ms bucket, want %d", c.name, got, c.n)
		}
		if got := o.errors.Load(); got != c.errs {
			t.Errorf("%s: %d errors, want %d", c.name, got, c.errs)
		}
		if got := time.Duration(o.sum.Load()); got != c.sumDuration {
			t.Errorf("%s: sum %v, want %v", c.name, got, c.sumDuration)
		}
	}
}

// BenchmarkCountServed measures the write-time counts of a batch of 16
// GETs, as BenchmarkProxyGet sends them: the cost added per batch.
func BenchmarkCountServed(b *testing.B) {
	ps := &poolStats{outcomes: make([]commandOutcome, commandIDs)}
	bt := &batch{arrived: time.Now()}
	id := commands.Lookup([]byte("GET")).ID
	b.ReportAllocs()
	for b.Loop() {
		for range 16 {
			bt.countCommand(ps, id)
		}
		bt.flushCommands(ps)
		bt.countServed(ps, time.Now())
	}
}

// BenchmarkCountCommand is BenchmarkCountServed without the write-time
// counts: what counting requests per command costs alone.
func BenchmarkCountCommand(b *testing.B) {
	ps := &poolStats{outcomes: make([]commandOutcome, commandIDs)}
	bt := &batch{}
	id := commands.Lookup([]byte("GET")).ID
	b.ReportAllocs()
	for b.Loop() {
		for range 16 {
			bt.countCommand(ps, id)
		}
		bt.flushCommands(ps)
		bt.served = bt.served[:0]
	}
}
