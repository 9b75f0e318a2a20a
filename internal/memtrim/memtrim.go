// Package memtrim gives memory that idle clients freed back to the
// system, for a process whose clients come and go in waves: Go returns
// freed memory only slowly, so a proxy that once had many busy clients
// would otherwise keep their goroutines' stacks and TLS buffers while they
// sleep. Each client that goes idle counts (Trimmer.WentIdle); every
// AfterIdle of them, at most once a second, a trim runs (a full garbage
// collection that returns what is free). A proxy holds the process's
// Trimmer from its Start to its Close, and no trim outlives the last one.
package memtrim

import (
	"log/slog"
	"runtime/debug"
	"sync"
	"time"
)

// Trimmer gives memory that parked clients freed back to the system: the
// stacks of their goroutines, and what TLS clients left from their
// handshakes. A trim costs a full garbage collection: it runs once
// AfterIdle clients have gone idle since the last one, and at most once a
// second.
//
// Every started proxy holds the Trimmer until its Close; when the last one
// lets go, a scheduled trim is cancelled and a running one waited for, so
// no trim outlives the proxies.
type Trimmer struct {
	mu      sync.Mutex
	idle    int       // clients gone idle since the last trim
	last    time.Time // when the last trim ran
	pending bool      // a trim is scheduled or running
	holders int       // started proxies that have not closed

	timer *time.Timer   // the scheduled trim's, while pending
	done  chan struct{} // closed when the scheduled trim has run
}

// Process is the process's Trimmer: memory is the process's, not a
// pool's or a proxy's.
var Process Trimmer

// AfterIdle is how many clients must go idle before a trim.
const AfterIdle = 1000

// Hold records that a proxy started.
func (t *Trimmer) Hold() {
	t.mu.Lock()
	t.holders++
	t.mu.Unlock()
}

// Release records that a proxy closed. When it was the last, the scheduled
// trim, if any, is cancelled, or waited for once it has begun.
func (t *Trimmer) Release() {
	t.mu.Lock()
	t.holders--
	if t.holders > 0 || !t.pending {
		t.mu.Unlock()
		return
	}
	timer, done := t.timer, t.done
	if timer.Stop() {
		t.pending, t.timer, t.done = false, nil, nil
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	<-done
}

// WentIdle records that a client parked, and schedules a trim when enough
// have; log tells of the trim.
func (t *Trimmer) WentIdle(log *slog.Logger) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.idle++
	if t.idle < AfterIdle || t.pending {
		return
	}
	t.pending = true
	done := make(chan struct{})
	t.done = done
	// The trim runs in a goroutine of its own, which ends with it.
	t.timer = time.AfterFunc(max(time.Until(t.last.Add(time.Second)), 0), func() {
		defer close(done)
		t.trim(log)
	})
}

// trim gives freed memory back to the system. The trim stays pending until
// it has ended, so that release can wait for it.
func (t *Trimmer) trim(log *slog.Logger) {
	t.mu.Lock()
	idle := t.idle
	t.idle, t.last = 0, time.Now()
	t.mu.Unlock()
	debug.FreeOSMemory()
	log.Debug("gave freed memory back to the system", "idle_clients", idle)
	t.mu.Lock()
	t.pending, t.timer, t.done = false, nil, nil
	t.mu.Unlock()
}
