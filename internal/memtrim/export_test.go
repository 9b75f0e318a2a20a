package memtrim

import "time"

// StateOf reads t's state, for the tests outside the package.
func StateOf(t *Trimmer) (pending bool, last time.Time, holders int) { return trimState(t) }

// RestartCount forgets the clients gone idle and sets the last trim to
// now, so that the next trim is due a second on.
func RestartCount(t *Trimmer) {
	t.mu.Lock()
	t.idle, t.last = 0, time.Now()
	t.mu.Unlock()
}
