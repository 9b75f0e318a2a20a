package proxy

import (
	"log/slog"
	"testing"
	"time"
)

// TestTrimmer checks that a trim runs once enough clients went idle, not
// before, and not twice within a second.
func TestTrimmer(t *testing.T) {
	var tr trimmer
	state := func() (int, bool, time.Time) {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return tr.idle, tr.pending, tr.last
	}
	for range trimAfterIdle - 1 {
		tr.wentIdle(slog.Default())
	}
	if idle, pending, last := state(); idle != trimAfterIdle-1 || pending || !last.IsZero() {
		t.Fatalf("after %d idle clients: idle %d, pending %v, last %v; want no trim yet", trimAfterIdle-1, idle, pending, last)
	}
	tr.wentIdle(slog.Default())
	waitTrim := func(after time.Time) time.Time {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			if idle, pending, last := state(); !pending && last.After(after) {
				if idle != 0 {
					t.Fatalf("idle %d after a trim, want 0", idle)
				}
				return last
			}
			if time.Now().After(deadline) {
				t.Fatal("no trim within 5 s")
			}
			time.Sleep(time.Millisecond)
		}
	}
	first := waitTrim(time.Time{})
	// Another round at once: it waits for the second to pass.
	for range trimAfterIdle {
		tr.wentIdle(slog.Default())
	}
	if _, pending, _ := state(); !pending {
		t.Fatal("no trim scheduled after a second round of idle clients")
	}
	second := waitTrim(first)
	if gap := second.Sub(first); gap < time.Second {
		t.Fatalf("two trims %v apart, want at least a second", gap)
	}
}
