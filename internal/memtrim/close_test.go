package memtrim_test

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/internal/memtrim"
	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/proxy"
)

// TestTrimStopsOnClose checks that a trim a proxy's parked clients
// scheduled does not run after the proxy's Close.
func TestTrimStopsOnClose(t *testing.T) {
	yaml := fmt.Sprintf("alpha:\n  listen: 127.0.0.1:%d\n  redis: true\n  client_park_after: 20\n  servers:\n    - 127.0.0.1:%d:1\n",
		testservers.FreePort(t, "127.0.0.1"), testservers.FreePort(t, "127.0.0.1"))
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	px, err := proxy.New(cfg, proxy.Options{})
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
		pending, _, holders := memtrim.StateOf(&memtrim.Process)
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
	memtrim.RestartCount(&memtrim.Process)
	for range memtrim.AfterIdle {
		memtrim.Process.WentIdle(slog.New(slog.DiscardHandler))
	}
	pending, scheduled, _ := memtrim.StateOf(&memtrim.Process)
	if !pending {
		t.Fatalf("no trim scheduled after %d idle clients", memtrim.AfterIdle)
	}
	if err := px.Close(); err != nil {
		t.Fatal(err)
	}
	closed := time.Now()
	if pending, _, _ := memtrim.StateOf(&memtrim.Process); pending {
		t.Error("a trim is still pending after Close")
	}
	time.Sleep(time.Until(scheduled.Add(time.Second + 500*time.Millisecond)))
	if _, last, _ := memtrim.StateOf(&memtrim.Process); !last.Equal(scheduled) {
		t.Errorf("a trim ran %v after Close", last.Sub(closed))
	}
}
