package main

import (
	"bytes"
	"crypto/sha256"
	"log/slog"
	"os"
	"time"
)

// watchConfig reloads (as SIGUSR1 does, off the signal loop) whenever the content of the file at
// path changes, checking every interval until the returned stop is called.
// It polls the path rather than watching an inode, so it follows an
// editor's rename-and-replace and Kubernetes' ConfigMap symlink swap (a
// new ..data link), which inode watches lose. A file caught half written
// is refused by the reload and retried when its content changes again.
// stop waits at most reloadWait for a reload in progress.
func watchConfig(path string, interval time.Duration, log *slog.Logger, reload func() error) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	last := fileDigest(path)
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
			}
			d := fileDigest(path)
			if d == nil || bytes.Equal(d, last) {
				continue
			}
			last = d
			log.Info("configuration file changed: reloading", "path", path)
			if err := reload(); err != nil {
				log.Error("reload refused, the running configuration is unchanged", "err", err)
			}
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

// fileDigest is the SHA-256 of the file's content, or nil when it cannot
// be read (being replaced, say).
func fileDigest(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(b)
	return sum[:]
}
