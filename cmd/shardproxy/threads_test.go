package main

import (
	"log/slog"
	"runtime"
	"testing"
)

// TestSetThreads checks that without -T the proxy keeps Go's own
// GOMAXPROCS (every core it may use, or the environment's GOMAXPROCS), and
// that -T N sets N.
func TestSetThreads(t *testing.T) {
	goDefault := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(goDefault) })
	log := slog.New(slog.DiscardHandler)
	setThreads(0, log)
	if got := runtime.GOMAXPROCS(0); got != goDefault {
		t.Errorf("no -T: GOMAXPROCS %d, want Go's own %d", got, goDefault)
	}
	for _, n := range []int{1, 3} {
		setThreads(n, log)
		if got := runtime.GOMAXPROCS(0); got != n {
			t.Errorf("-T %d: GOMAXPROCS %d", n, got)
		}
	}
}
