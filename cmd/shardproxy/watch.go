package main

import (
	"bytes"
	"log/slog"
	"os"
	"time"

	"github.com/shardproxy/shardproxy/config"
)

// settlePolls is how many polls in a row must read the same new content
// before the watcher applies it: the first sees the change, the others
// see it unchanged, so a file being written is applied only once nothing
// wrote to it for settlePolls-1 intervals. Two polls would wait a single
// interval, which a writer pausing 1.5 s between writes at the default
// interval of 1 s outlasts about every other time.
const settlePolls = 3

// reloader is what the watcher reloads: *proxy.Proxy.
type reloader interface {
	ConfigDigest() string          // the running configuration's digest
	ReloadBytes(data []byte) error // apply data, counted as SIGUSR1's reload
}

// configWatch is the state of watchConfig's polls.
type configWatch struct {
	path string
	px   reloader
	log  *slog.Logger
	// pending is a new content not applied yet, read the same by seen
	// polls in a row.
	pending []byte
	seen    int
	// tried is the content the watcher last applied or saw refused: it is
	// not tried again until the file holds something else in between.
	tried []byte
}

// watchConfig reloads px (as SIGUSR1 does) when the content of the file at
// path changes and then stays the same for settlePolls polls, interval
// apart, until the returned stop is called. Each poll reads the file once,
// and what is applied is the bytes the polls compared, not a later read:
// a file rewritten in place is never applied half written, unless its
// writer pauses longer than the polls wait.
//
// It polls the path rather than watching an inode, so it follows an
// editor's rename-and-replace and Kubernetes' ConfigMap symlink swap (a
// new ..data link), which inode watches lose. A reload runs on the
// watcher's goroutine, off the signal loop; stop waits at most reloadWait
// for one in progress.
func watchConfig(path string, interval time.Duration, log *slog.Logger, px reloader) (stop func()) {
	w := &configWatch{path: path, px: px, log: log}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		// A timer started after each poll, not a ticker, whose ticks
		// can come back to back after a slow reload: polls are at least
		// interval apart.
		t := time.NewTimer(interval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
			}
			w.poll()
			t.Reset(interval)
		}
	}()
	return func() {
		close(quit)
		select {
		case <-done:
		case <-time.After(reloadWait):
			log.Warn("a reload is still running; exiting without it")
		}
	}
}

// poll reads the file once and applies its content when it has settled.
func (w *configWatch) poll() {
	data, err := os.ReadFile(w.path)
	if err != nil || len(data) == 0 {
		// Being replaced or just truncated, say: what comes next is
		// waited for afresh.
		w.pending, w.seen = nil, 0
		return
	}
	if bytes.Equal(data, w.tried) || config.Digest(data) == w.px.ConfigDigest() {
		// Nothing new: what runs (applied at start, by SIGUSR1 or by
		// this watcher), or what was refused and not changed since.
		w.pending, w.seen, w.tried = nil, 0, data
		return
	}
	if !bytes.Equal(data, w.pending) {
		w.pending, w.seen = data, 1
		w.log.Debug("configuration file changed: waiting for it to settle", "path", w.path)
		return
	}
	if w.seen++; w.seen < settlePolls {
		return
	}
	w.pending, w.seen, w.tried = nil, 0, data
	w.log.Info("configuration file changed: reloading", "path", w.path, "digest", config.Digest(data))
	if err := w.px.ReloadBytes(data); err != nil {
		w.log.Error("reload refused, the running configuration is unchanged", "err", err)
	}
}
