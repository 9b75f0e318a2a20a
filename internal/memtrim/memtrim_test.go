package memtrim

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// TestTrimmer checks that a trim runs once enough clients went idle, not
// before, and not twice within a second.
func TestTrimmer(t *testing.T) {
	var tr Trimmer
	state := func() (int, bool, time.Time) {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return tr.idle, tr.pending, tr.last
	}
	for range AfterIdle - 1 {
		tr.WentIdle(slog.Default())
	}
	if idle, pending, last := state(); idle != AfterIdle-1 || pending || !last.IsZero() {
		t.Fatalf("after %d idle clients: idle %d, pending %v, last %v; want no trim yet", AfterIdle-1, idle, pending, last)
	}
	tr.WentIdle(slog.Default())
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
	for range AfterIdle {
		tr.WentIdle(slog.Default())
	}
	if _, pending, _ := state(); !pending {
		t.Fatal("no trim scheduled after a second round of idle clients")
	}
	second := waitTrim(first)
	if gap := second.Sub(first); gap < time.Second {
		t.Fatalf("two trims %v apart, want at least a second", gap)
	}
}

// trimState reads tr's state.
func trimState(tr *Trimmer) (pending bool, last time.Time, holders int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.pending, tr.last, tr.holders
}

// blockingHandler is a slog handler whose Handle waits for release, so that
// a trim, which logs last, is held running.
type blockingHandler struct {
	entered chan struct{}
	release chan struct{}
}

func (h *blockingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *blockingHandler) Handle(context.Context, slog.Record) error {
	h.entered <- struct{}{}
	<-h.release
	return nil
}
func (h *blockingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *blockingHandler) WithGroup(string) slog.Handler      { return h }

// TestTrimmerRelease checks that the last holder's release cancels a
// scheduled trim and waits for a running one, and that a release while
// another holder remains leaves the trim to run.
func TestTrimmerRelease(t *testing.T) {
	t.Run("cancels a scheduled trim", func(t *testing.T) {
		var tr Trimmer
		tr.Hold()
		before := time.Now()
		tr.last = before // the trim is due in a second
		for range AfterIdle {
			tr.WentIdle(slog.New(slog.DiscardHandler))
		}
		tr.Release()
		if pending, _, _ := trimState(&tr); pending {
			t.Fatal("trim still pending after the last release")
		}
		time.Sleep(1500 * time.Millisecond)
		if _, last, _ := trimState(&tr); !last.Equal(before) {
			t.Fatal("the trim ran after the last release")
		}
	})
	t.Run("waits for a running trim", func(t *testing.T) {
		var tr Trimmer
		h := &blockingHandler{entered: make(chan struct{}), release: make(chan struct{})}
		let := sync.OnceFunc(func() { close(h.release) })
		t.Cleanup(let) // a failing test leaves no trim blocked
		tr.Hold()
		for range AfterIdle {
			tr.WentIdle(slog.New(h)) // due at once: no trim ran before
		}
		<-h.entered // the trim runs, held in its log line
		released := make(chan struct{})
		go func() {
			tr.Release()
			close(released)
		}()
		select {
		case <-released:
			t.Fatal("release returned while the trim was running")
		case <-time.After(100 * time.Millisecond):
		}
		let()
		select {
		case <-released:
		case <-time.After(5 * time.Second):
			t.Fatal("release still waiting 5 s after the trim ended")
		}
		if pending, _, _ := trimState(&tr); pending {
			t.Fatal("trim still pending after it ran")
		}
	})
	t.Run("another holder keeps the trim", func(t *testing.T) {
		var tr Trimmer
		tr.Hold()
		tr.Hold()
		tr.last = time.Now().Add(-900 * time.Millisecond) // due in 0.1 s
		for range AfterIdle {
			tr.WentIdle(slog.New(slog.DiscardHandler))
		}
		tr.Release()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if pending, last, _ := trimState(&tr); !pending && !last.IsZero() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no trim within 5 s while a holder remains")
			}
		}
		tr.Release()
	})
}
