package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
)

// logFormat is how log lines are written: slog's text or JSON handler
// (--log-format), with or without the priority prefix journald reads.
type logFormat struct {
	json bool
	// journal prefixes each line with its syslog priority, "<3>" for
	// an error, as sd-daemon(3) describes: journald then files the line
	// at that priority, so journalctl -p err shows the errors.
	journal bool
}

// parseLogFormat reads --log-format: "text" (the default) or "json".
func parseLogFormat(s string) (logFormat, bool) {
	switch s {
	case "", "text":
		return logFormat{}, true
	case "json":
		return logFormat{json: true}, true
	}
	return logFormat{}, false
}

// underJournal reports whether stderr is the stream systemd connected to
// journald: JOURNAL_STREAM names its device and inode ("dev:inode"), which
// must be those of the process's stderr, not of a stream a child
// inherited the variable through.
func underJournal(stderr io.Writer) bool {
	env := os.Getenv("JOURNAL_STREAM")
	f, ok := stderr.(*os.File)
	if env == "" || !ok {
		return false
	}
	devS, inoS, ok := strings.Cut(env, ":")
	dev, err1 := strconv.ParseUint(devS, 10, 64)
	ino, err2 := strconv.ParseUint(inoS, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return false
	}
	return sameFile(f, dev, ino)
}

// newHandler makes the slog handler of format over w at level.
func newHandler(w io.Writer, format logFormat, level slog.Leveler) slog.Handler {
	opts := &slog.HandlerOptions{Level: level}
	var jw *journalWriter
	if format.journal {
		jw = &journalWriter{w: w}
		w = jw
	}
	var h slog.Handler
	if format.json {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	if jw != nil {
		h = journalHandler{inner: h, w: jw}
	}
	return h
}

// journalWriter writes each line with the priority prefix its handler set
// for it; mu is held from the prefix's choice to the line's write.
type journalWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
}

func (j *journalWriter) Write(p []byte) (int, error) {
	line := make([]byte, 0, len(j.prefix)+len(p))
	line = append(append(line, j.prefix...), p...)
	if _, err := j.w.Write(line); err != nil {
		return 0, err
	}
	return len(p), nil
}

// journalHandler sets the priority prefix of each record's line: slog's
// handlers write a record in one Write, under journalWriter.mu here.
type journalHandler struct {
	inner slog.Handler
	w     *journalWriter
}

func (h journalHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h journalHandler) Handle(ctx context.Context, r slog.Record) error {
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	h.w.prefix = priority(r.Level)
	return h.inner.Handle(ctx, r)
}

func (h journalHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return journalHandler{inner: h.inner.WithAttrs(attrs), w: h.w}
}

func (h journalHandler) WithGroup(name string) slog.Handler {
	return journalHandler{inner: h.inner.WithGroup(name), w: h.w}
}

// priority is the syslog priority prefix of a level: err, warning, info
// or debug.
func priority(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "<3>"
	case l >= slog.LevelWarn:
		return "<4>"
	case l >= slog.LevelInfo:
		return "<6>"
	}
	return "<7>"
}
