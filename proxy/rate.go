package proxy

import (
	"sync"
	"time"
)

// rateWindow is the span over which a rateMeter averages: long enough to
// smooth the mover's pauses, short enough to show a stall.
const rateWindow = 10

// rateMeter counts events in one-second buckets and reports their rate
// over the last rateWindow whole seconds. It is for counts made a batch at
// a time (a MIGRATE's keys), not per request: adding takes a lock.
type rateMeter struct {
	mu  sync.Mutex
	sec [rateWindow + 2]int64 // the unix second each bucket counts
	n   [rateWindow + 2]int64
}

// add counts n events at now.
func (m *rateMeter) add(now time.Time, n int64) {
	s := now.Unix()
	i := int(s % int64(len(m.sec)))
	m.mu.Lock()
	if m.sec[i] != s {
		m.sec[i], m.n[i] = s, 0
	}
	m.n[i] += n
	m.mu.Unlock()
}

// perSecond is the events per second over the rateWindow whole seconds
// before now's.
func (m *rateMeter) perSecond(now time.Time) float64 {
	s := now.Unix()
	var sum int64
	m.mu.Lock()
	for i, at := range m.sec {
		if at < s && at >= s-rateWindow {
			sum += m.n[i]
		}
	}
	m.mu.Unlock()
	return float64(sum) / rateWindow
}
