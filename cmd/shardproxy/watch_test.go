package main

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/config"
)

// recordingReloader stands for the proxy in the watcher's unit tests: it
// parses what it is given, as the proxy does, and records what it applied.
type recordingReloader struct {
	mu      sync.Mutex
	digest  string   // the running content's digest
	applied [][]byte // the contents applied, in order
	refused int      // the contents that did not parse
}

func (r *recordingReloader) ConfigDigest() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.digest
}

func (r *recordingReloader) ReloadBytes(data []byte) error {
	cfg, err := config.Parse(data)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.refused++
		return err
	}
	r.digest = cfg.Digest
	r.applied = append(r.applied, bytes.Clone(data))
	return nil
}

// state is what the reloader has done so far.
func (r *recordingReloader) state() (applied [][]byte, refused int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.applied...), r.refused
}

// watchConfText is a configuration file whose pool has servers 1..n.
func watchConfText(n int) string {
	s := "alpha:\n  listen: 127.0.0.1:22121\n  servers:\n"
	for i := 1; i <= n; i++ {
		s += "    - 127.0.0.1:" + string(rune('0'+i)) + "1211:1\n"
	}
	return s
}

// startWatching writes initial to a new file, starts a reloader running
// the content running and a watcher polling every interval, and returns the
// file's path.
func startWatching(t *testing.T, initial, running string, interval time.Duration) (string, *recordingReloader) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nutcracker.yml")
	if err := os.WriteFile(path, []byte(initial), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &recordingReloader{digest: config.Digest([]byte(running))}
	stop := watchConfig(path, interval, slog.New(slog.NewTextHandler(io.Discard, nil)), r)
	t.Cleanup(stop)
	return path, r
}

// waitApplied polls until the reloader has applied n contents, for up to
// 10 s.
func waitApplied(t *testing.T, r *recordingReloader, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		applied, _ := r.state()
		if len(applied) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %d contents applied, want %d", len(applied), n)
		}
	}
}

// TestWatchConfigSettles: a file rewritten in place in two writes, with a
// pause longer than one poll between them, is applied once, whole: the
// first half, which parses, never is.
func TestWatchConfigSettles(t *testing.T) {
	const interval = 250 * time.Millisecond
	path, r := startWatching(t, watchConfText(3), watchConfText(3), interval)
	whole := "# rewritten\n" + watchConfText(3)
	cut := strings.Index(whole, "21211:1\n") + len("21211:1\n") // after the second server
	if _, err := config.Parse([]byte(whole[:cut])); err != nil {
		t.Fatalf("the first half should parse: %v", err)
	}
	start := time.Now()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(whole[:cut])
	time.Sleep(interval * 3 / 2)
	f.WriteString(whole[cut:])
	pause := time.Since(start)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if pause >= 2*interval {
		// The half stood still for as long as the polls wait: applying
		// it is then right, and this run cannot tell.
		t.Skipf("the pause between the writes took %v, longer than two polls", pause)
	}
	waitApplied(t, r, 1)
	took := time.Since(start)
	time.Sleep(5 * interval) // nothing more comes
	applied, refused := r.state()
	t.Logf("writes %v apart, polls every %v: %d contents applied (the first %v after the first write), %d refused",
		pause.Round(time.Millisecond), interval, len(applied), took.Round(time.Millisecond), refused)
	for i, a := range applied {
		if string(a) != whole {
			t.Errorf("content %d applied is not the whole file:\n%s", i+1, a)
		}
	}
	if len(applied) != 1 || refused != 0 {
		t.Fatalf("%d contents applied and %d refused, want the whole file applied once", len(applied), refused)
	}
	if took < interval*3/2+2*interval {
		t.Errorf("applied %v after the first write: before the second write had settled for two polls", took)
	}
}

// TestWatchConfigOnce: the watcher applies what differs from the running
// content, once. The file rewritten with the running content reloads
// nothing; a content that does not parse is refused once, not at each
// poll; a later good content is applied.
func TestWatchConfigOnce(t *testing.T) {
	const interval = 20 * time.Millisecond
	initial := watchConfText(2)
	path, r := startWatching(t, initial, initial, interval)
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(initial)
	time.Sleep(10 * interval)
	if applied, refused := r.state(); len(applied) != 0 || refused != 0 {
		t.Fatalf("the running content rewritten: %d applied, %d refused, want none", len(applied), refused)
	}
	write("alpha: [\n")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, refused := r.state(); refused > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("after 10 s: the bad content not tried")
		}
	}
	time.Sleep(10 * interval)
	if applied, refused := r.state(); len(applied) != 0 || refused != 1 {
		t.Fatalf("a bad content: %d applied, %d refused, want 0 and 1", len(applied), refused)
	}
	write(watchConfText(3))
	waitApplied(t, r, 1)
	time.Sleep(10 * interval)
	applied, refused := r.state()
	if len(applied) != 1 || string(applied[0]) != watchConfText(3) || refused != 1 {
		t.Fatalf("a good content after the bad: %d applied, %d refused, want 1 and 1", len(applied), refused)
	}
}

// TestWatchConfigRunning: the watcher compares the file with what runs,
// not with a read of its own. A file that changed between the start's
// read and the watcher's first poll is applied; a content SIGUSR1 applied
// already is not applied again.
func TestWatchConfigRunning(t *testing.T) {
	const interval = 20 * time.Millisecond
	// The start read two servers; the file has three by the first poll.
	path, r := startWatching(t, watchConfText(3), watchConfText(2), interval)
	waitApplied(t, r, 1)
	if applied, _ := r.state(); string(applied[0]) != watchConfText(3) {
		t.Fatalf("applied %q, want the file", applied[0])
	}
	// SIGUSR1 right after an edit: the proxy reads and applies it itself.
	if err := os.WriteFile(path, []byte(watchConfText(1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.ReloadBytes([]byte(watchConfText(1))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * interval)
	if applied, refused := r.state(); len(applied) != 2 || refused != 0 {
		t.Fatalf("%d contents applied (SIGUSR1's included), %d refused, want 2 and 0", len(applied), refused)
	}
}
