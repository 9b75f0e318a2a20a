package pools

import (
	"sync/atomic"
	"time"
)

// latencyBounds are the upper bounds of the latency histogram's buckets,
// from 100 µs to 5 s; a last bucket takes what is slower.
var latencyBounds = [...]time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second,
}

// LatencyBuckets is the number of buckets of a Latency: one per bound of
// LatencyBounds and one for what is slower than the last.
const LatencyBuckets = len(latencyBounds) + 1

// LatencyBounds returns the upper bounds of a Latency's buckets, ascending
// (the last bucket, beyond them, has none).
func LatencyBounds() []time.Duration { return latencyBounds[:] }

// Latency is a histogram of the time from a call's Enqueue to its reply,
// with fixed buckets: a few atomic adds per reply, read at any time.
// Calls that fail or want no reply are not in it, so its count is the
// server's Responses.
type Latency struct {
	buckets [LatencyBuckets]atomic.Uint64
	sum     atomic.Int64 // nanoseconds
}

// LatencySnapshot is a Latency at one moment.
type LatencySnapshot struct {
	Buckets [LatencyBuckets]uint64 // replies per bucket (not cumulative)
	Sum     time.Duration
}

// Count is the number of replies in the snapshot.
func (s *LatencySnapshot) Count() uint64 {
	var n uint64
	for _, b := range s.Buckets {
		n += b
	}
	return n
}

// Snapshot reads the histogram. Replies observed meanwhile may be counted
// in some buckets and not yet in the sum.
func (l *Latency) Snapshot() LatencySnapshot {
	var s LatencySnapshot
	for i := range l.buckets {
		s.Buckets[i] = l.buckets[i].Load()
	}
	s.Sum = time.Duration(l.sum.Load())
	return s
}

// observe counts the replies of calls, which arrived at now.
func (l *Latency) observe(now time.Time, calls []*Call) {
	var sum time.Duration
	for _, c := range calls {
		d := now.Sub(c.Queued)
		if d < 0 {
			d = 0
		}
		sum += d
		l.buckets[LatencyBucket(d)].Add(1)
	}
	l.sum.Add(int64(sum))
}

// LatencyBucket is the index of the bucket d falls in: the first whose
// bound in LatencyBounds is at least d, or the last bucket.
func LatencyBucket(d time.Duration) int {
	for i, b := range latencyBounds {
		if d <= b {
			return i
		}
	}
	return len(latencyBounds)
}
