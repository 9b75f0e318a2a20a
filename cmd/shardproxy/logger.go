package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"sync"
)

// Nutcracker's verbosity (-v) runs from LOG_EMERG (0) to LOG_PVERB (11).
const (
	minVerbosity = 0
	maxVerbosity = 11
)

// logOutput is the writer under the logger: stderr, or the -o file. Reopen
// puts a fresh file at the -o path under it while the slog handlers keep
// writing to the logOutput, so a logrotate-style rename followed by SIGHUP
// sends new lines to a new file. A write that fails (a full disk, a stderr
// pipe whose reader is gone) returns its error, which slog drops.
type logOutput struct {
	path string // the -o path; "" when logging to stderr

	mu sync.Mutex
	w  io.Writer // f, stderr, or io.Discard once closed
	f  *os.File  // the open -o file; nil for stderr
	// term is w's file descriptor when w is a terminal, else -1.
	term int
}

// errBackgroundWrite is what Write returns for a line it drops because
// writing it to the terminal would draw SIGTTOU.
var errBackgroundWrite = errors.New("log line dropped: a background job may not write to the terminal (stty tostop)")

// openLogOutput opens path for appending, or uses stderr when path is "".
func openLogOutput(path string, stderr io.Writer) (*logOutput, error) {
	o := &logOutput{path: path}
	if path == "" {
		o.set(stderr, nil)
		return o, nil
	}
	f, err := openLogFile(path)
	if err != nil {
		return nil, err
	}
	o.set(f, f)
	return o, nil
}

// set makes w, with f its file or nil, the writer; o.mu is held or o is
// not shared yet.
func (o *logOutput) set(w io.Writer, f *os.File) {
	o.w, o.f, o.term = w, f, -1
	if tf, ok := w.(*os.File); ok {
		if fd := tf.Fd(); isTerminal(fd) {
			o.term = int(fd)
		}
	}
}

// openLogFile opens path for appending, creating it if need be.
func openLogFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	return f, nil
}

// Write writes one log line to the current file or stderr. It drops the
// line when the output is a terminal that would answer with SIGTTOU.
func (o *logOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.term >= 0 && writeWouldStop(uintptr(o.term)) {
		return 0, errBackgroundWrite
	}
	return o.w.Write(p)
}

// Reopen opens the -o path afresh (creating it if it was renamed away) and
// closes the file it replaces. On error the old file stays in use. It does
// nothing when logging to stderr.
func (o *logOutput) Reopen() error {
	if o.path == "" {
		return nil
	}
	f, err := openLogFile(o.path)
	if err != nil {
		return err
	}
	o.mu.Lock()
	old := o.f
	o.set(f, f)
	o.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

// Close closes the -o file; later writes are discarded.
func (o *logOutput) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	f := o.f
	o.set(io.Discard, nil)
	if f == nil {
		return nil
	}
	return f.Close()
}

// logger is the proxy's logger with what signals change in it: the output,
// which SIGHUP reopens, and the level, which SIGTTIN and SIGTTOU move one
// step of nutcracker's verbosity at a time.
type logger struct {
	*slog.Logger // filtered by level

	// notice writes whatever the level, as nutcracker's log_safe does, so a
	// line saying what a signal did is never filtered out.
	notice *slog.Logger

	out   *logOutput
	level slog.LevelVar
	// verbosity is nutcracker's -v, minVerbosity..maxVerbosity. Only the
	// signal loop changes it after newLogger.
	verbosity int
}

// newLogger logs to the -o file (path) or stderr at nutcracker's
// verbosity, in format. Logging to stderr under journald, each line
// carries its priority (see logFormat).
func newLogger(path string, verbosity int, format logFormat, stderr io.Writer) (*logger, error) {
	out, err := openLogOutput(path, stderr)
	if err != nil {
		return nil, err
	}
	if path == "" && underJournal(stderr) {
		format.journal = true
	}
	l := &logger{out: out}
	l.setVerbosity(verbosity)
	l.Logger = slog.New(newHandler(out, format, &l.level))
	l.notice = slog.New(newHandler(out, format, slog.Level(math.MinInt)))
	return l, nil
}

// setVerbosity sets the verbosity, kept within nutcracker's range, and the
// slog level it maps to.
func (l *logger) setVerbosity(v int) {
	l.verbosity = max(minVerbosity, min(v, maxVerbosity))
	l.level.Set(slogLevel(l.verbosity))
}

// slogLevel maps nutcracker's verbosity onto slog: 0-3 (emerg to error)
// error, 4 warn, 5 (notice) and 6 info, 7 and more debug.
func slogLevel(verbosity int) slog.Level {
	switch {
	case verbosity <= 3:
		return slog.LevelError
	case verbosity == 4:
		return slog.LevelWarn
	case verbosity >= 7:
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// Close closes the log file, if any.
func (l *logger) Close() error { return l.out.Close() }
