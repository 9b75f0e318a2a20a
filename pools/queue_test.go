package pools

import "testing"

// A queue that is never empty, as a server connection's under a steady
// load, must reuse the slots it has popped instead of growing.
func TestQueueNeverEmptyStaysBounded(t *testing.T) {
	var q queue
	calls := make([]*Call, 8)
	for i := range calls {
		calls[i] = &Call{}
	}
	q.push(calls[0])
	for i := 1; i <= 1_000_000; i++ {
		q.push(calls[i%len(calls)])
		if got, want := q.pop(), calls[(i-1)%len(calls)]; got != want {
			t.Fatalf("pop %d: got call %p, want %p (order lost)", i, got, want)
		}
	}
	if q.len() != 1 {
		t.Fatalf("len %d, want 1", q.len())
	}
	if c := cap(q.buf); c > 64 {
		t.Fatalf("backing array grew to %d slots for a queue never holding more than 2", c)
	}
	for i := range q.buf[:q.head] {
		if q.buf[i] != nil {
			t.Fatalf("popped slot %d still references a call", i)
		}
	}
}

// Bursts larger than the backing array keep their order across the
// compaction.
func TestQueueOrderAcrossCompaction(t *testing.T) {
	var q queue
	next, want := 0, 0
	calls := make([]*Call, 1000)
	for i := range calls {
		calls[i] = &Call{}
	}
	for round := range 200 {
		for range round%7 + 1 {
			q.push(calls[next%len(calls)])
			next++
		}
		for range round % 5 {
			if q.len() == 0 {
				break
			}
			if q.pop() != calls[want%len(calls)] {
				t.Fatalf("round %d: order lost at %d", round, want)
			}
			want++
		}
	}
	for q.len() > 0 {
		if q.pop() != calls[want%len(calls)] {
			t.Fatalf("drain: order lost at %d", want)
		}
		want++
	}
	if want != next {
		t.Fatalf("popped %d of %d pushed", want, next)
	}
}
