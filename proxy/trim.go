package proxy

import (
	"log/slog"
	"runtime/debug"
	"sync"
	"time"
)

// trimmer gives memory that parked clients freed back to the system: the
// stacks of their goroutines, and what TLS clients left from their
// handshakes. Go returns freed memory to the system only slowly, so
// without it a proxy that once had many busy clients would keep their
// memory while they sleep.
// A trim costs a full garbage collection: it runs once trimAfterIdle
// clients have gone idle since the last one, and at most once a second.
type trimmer struct {
	mu      sync.Mutex
	idle    int       // clients gone idle since the last trim
	last    time.Time // when the last trim ran
	pending bool      // a trim is scheduled
}

// memTrim is the process's trimmer: memory is the process's, not a pool's.
var memTrim trimmer

// trimAfterIdle is how many clients must park before a trim.
const trimAfterIdle = 1000

// wentIdle records that a client parked, and schedules a trim when enough
// have; log tells of the trim.
func (t *trimmer) wentIdle(log *slog.Logger) {
	t.mu.Lock()
	t.idle++
	if t.idle < trimAfterIdle || t.pending {
		t.mu.Unlock()
		return
	}
	t.pending = true
	wait := time.Until(t.last.Add(time.Second))
	t.mu.Unlock()
	// The trim runs in a goroutine of its own, which ends with it.
	time.AfterFunc(max(wait, 0), func() { t.trim(log) })
}

// trim gives freed memory back to the system.
func (t *trimmer) trim(log *slog.Logger) {
	t.mu.Lock()
	idle := t.idle
	t.idle, t.pending, t.last = 0, false, time.Now()
	t.mu.Unlock()
	debug.FreeOSMemory()
	log.Debug("gave freed memory back to the system", "idle_clients", idle)
}
