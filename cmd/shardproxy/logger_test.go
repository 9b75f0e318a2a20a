//go:build linux

package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestSlogLevel(t *testing.T) {
	for _, tc := range []struct {
		verbosity int
		want      slog.Level
	}{
		{0, slog.LevelError}, {3, slog.LevelError}, {4, slog.LevelWarn}, {5, slog.LevelInfo},
		{6, slog.LevelInfo}, {7, slog.LevelDebug}, {11, slog.LevelDebug},
	} {
		if got := slogLevel(tc.verbosity); got != tc.want {
			t.Errorf("verbosity %d: %v, want %v", tc.verbosity, got, tc.want)
		}
	}
}

// TestLogOutputReopen renames the log file as logrotate does and reopens:
// the renamed file keeps the earlier line, a new file gets the later one.
func TestLogOutputReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	lg, err := newLogger(path, 6, logFormat{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	lg.Info("before")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	lg.Info("between") // still to the renamed file, as nutcracker
	if err := lg.out.Reopen(); err != nil {
		t.Fatal(err)
	}
	lg.Info("after")
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if !strings.Contains(string(old), "msg=before") || !strings.Contains(string(old), "msg=between") ||
		strings.Contains(string(old), "msg=after") {
		t.Errorf("renamed file:\n%s", old)
	}
	if string(cur) == "" || !strings.Contains(string(cur), "msg=after") || strings.Contains(string(cur), "msg=before") {
		t.Errorf("new file:\n%s", cur)
	}
	if err := lg.Close(); err != nil {
		t.Fatal(err)
	}
	lg.Info("closed") // discarded, no panic
}

// TestLogOutputReopenFails keeps the old file when the path cannot be
// opened again.
func TestLogOutputReopenFails(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "log")
	lg, err := newLogger(path, 6, logFormat{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	// A directory where the file was: opening it for writing fails.
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	l := &signalLoop{log: lg}
	l.dispatch(syscall.SIGHUP)
	old, _ := os.ReadFile(path + ".1")
	if !strings.Contains(string(old), `msg="SIGHUP: log file not reopened, logging to the old one"`) {
		t.Errorf("renamed file:\n%s", old)
	}
}

// TestDispatch runs each signal's action in process, without sending it.
func TestDispatch(t *testing.T) {
	var buf bytes.Buffer
	lg, err := newLogger("", 6, logFormat{}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	l := &signalLoop{log: lg}
	for _, tc := range []struct {
		sig       syscall.Signal
		stop      bool
		verbosity int
		want      string
	}{
		{syscall.SIGHUP, false, 6, `msg="SIGHUP: logging to stderr, no log file to reopen"`},
		{syscall.SIGTTIN, false, 7, `msg="SIGTTIN: log level up" verbosity=7 min_level=DEBUG`},
		{syscall.SIGTTIN, false, 8, `msg="SIGTTIN: log level up" verbosity=8 min_level=DEBUG`},
		{syscall.SIGTTIN, false, 9, `verbosity=9`},
		{syscall.SIGTTIN, false, 10, `verbosity=10`},
		{syscall.SIGTTIN, false, 11, `verbosity=11`},
		{syscall.SIGTTIN, false, 11, `msg="SIGTTIN: log level unchanged, at the end of its range" verbosity=11`},
		{syscall.SIGUSR1, false, 11, `msg="SIGUSR1: the proxy is not running yet; nothing to reload"`},
		{syscall.SIGUSR2, false, 11, `msg="SIGUSR2: the proxy is not running yet; nothing to upgrade"`},
		{syscall.SIGTERM, true, 11, ""},
		{syscall.SIGINT, true, 11, ""},
	} {
		buf.Reset()
		if stop := l.dispatch(tc.sig); stop != tc.stop {
			t.Errorf("%v: stop %v, want %v", tc.sig, stop, tc.stop)
		}
		if lg.verbosity != tc.verbosity || !strings.Contains(buf.String(), tc.want) {
			t.Errorf("%v: verbosity %d, logged %q; want %d, %q", tc.sig, lg.verbosity, buf.String(), tc.verbosity, tc.want)
		}
	}
	// Down to error only: the signal's line is still written, other info
	// lines are not.
	for range 11 {
		l.dispatch(syscall.SIGTTOU)
	}
	buf.Reset()
	l.dispatch(syscall.SIGTTOU)
	lg.Info("filtered")
	lg.Error("kept")
	want := `msg="SIGTTOU: log level unchanged, at the end of its range" verbosity=0 min_level=ERROR`
	if got := buf.String(); !strings.Contains(got, want) || strings.Contains(got, "filtered") || !strings.Contains(got, "kept") {
		t.Errorf("at verbosity 0: %q", got)
	}
}
