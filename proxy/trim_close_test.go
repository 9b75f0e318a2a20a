package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// trimState reads tr's state.
func trimState(tr *trimmer) (pending bool, last time.Time, holders int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.pending, tr.last, tr.holders
}

// TestTrimStopsOnClose checks that a trim a proxy's parked clients
// scheduled does not run after the proxy's Close.
func TestTrimStopsOnClose(t *testing.T) {
	yaml := fmt.Sprintf("alpha:\n  listen: 127.0.0.1:%d\n  redis: true\n  client_park_after: 20\n  servers:\n    - 127.0.0.1:%d:1\n",
		testservers.FreePort(t, "127.0.0.1"), testservers.FreePort(t, "127.0.0.1"))
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	px, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := px.Start(); err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	// A trim that earlier tests scheduled has run by now, or been
	// cancelled by their Close.
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		pending, _, holders := trimState(&memTrim)
		if holders != 1 {
			t.Fatalf("%d proxies hold the trimmer, want 1: another test left a proxy open", holders)
		}
		if !pending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a trim is still pending 2 s on")
		}
	}
	// As parked clients do: enough go idle for a trim, which is due a
	// second after the last one.
	memTrim.mu.Lock()
	memTrim.idle, memTrim.last = 0, time.Now()
	memTrim.mu.Unlock()
	for range trimAfterIdle {
		memTrim.wentIdle(px.log)
	}
	pending, scheduled, _ := trimState(&memTrim)
	if !pending {
		t.Fatalf("no trim scheduled after %d idle clients", trimAfterIdle)
	}
	if err := px.Close(); err != nil {
		t.Fatal(err)
	}
	closed := time.Now()
	if pending, _, _ := trimState(&memTrim); pending {
		t.Error("a trim is still pending after Close")
	}
	time.Sleep(time.Until(scheduled.Add(time.Second + 500*time.Millisecond)))
	if _, last, _ := trimState(&memTrim); !last.Equal(scheduled) {
		t.Errorf("a trim ran %v after Close", last.Sub(closed))
	}
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
		var tr trimmer
		tr.hold()
		before := time.Now()
		tr.last = before // the trim is due in a second
		for range trimAfterIdle {
			tr.wentIdle(slog.New(slog.DiscardHandler))
		}
		tr.release()
		if pending, _, _ := trimState(&tr); pending {
			t.Fatal("trim still pending after the last release")
		}
		time.Sleep(1500 * time.Millisecond)
		if _, last, _ := trimState(&tr); !last.Equal(before) {
			t.Fatal("the trim ran after the last release")
		}
	})
	t.Run("waits for a running trim", func(t *testing.T) {
		var tr trimmer
		h := &blockingHandler{entered: make(chan struct{}), release: make(chan struct{})}
		let := sync.OnceFunc(func() { close(h.release) })
		t.Cleanup(let) // a failing test leaves no trim blocked
		tr.hold()
		for range trimAfterIdle {
			tr.wentIdle(slog.New(h)) // due at once: no trim ran before
		}
		<-h.entered // the trim runs, held in its log line
		released := make(chan struct{})
		go func() {
			tr.release()
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
		var tr trimmer
		tr.hold()
		tr.hold()
		tr.last = time.Now().Add(-900 * time.Millisecond) // due in 0.1 s
		for range trimAfterIdle {
			tr.wentIdle(slog.New(slog.DiscardHandler))
		}
		tr.release()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if pending, last, _ := trimState(&tr); !pending && !last.IsZero() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no trim within 5 s while a holder remains")
			}
		}
		tr.release()
	})
}
