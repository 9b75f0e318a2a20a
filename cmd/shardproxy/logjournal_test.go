//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

// TestLogFormatJSON: --log-format json writes each line as a JSON object
// with slog's keys.
func TestLogFormatJSON(t *testing.T) {
	var buf bytes.Buffer
	lg, err := newLogger("", 6, logFormat{json: true}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	lg.Warn("server failure", "server", "a:1")
	lg.notice.Info("SIGHUP: logging to stderr")
	lg.Debug("not at verbosity 6")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines: %q", len(lines), buf.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatalf("%q: %v", lines[0], err)
	}
	if rec["level"] != "WARN" || rec["msg"] != "server failure" || rec["server"] != "a:1" {
		t.Fatalf("record %v", rec)
	}
	if _, ok := parseLogFormat("xml"); ok {
		t.Fatal("xml accepted")
	}
}

// TestJournalPriority: under journald each line starts with its syslog
// priority (sd-daemon(3)): <3> for an error, <4> a warning, <6> info, <7>
// debug; with JSON too.
func TestJournalPriority(t *testing.T) {
	for _, json := range []bool{false, true} {
		var buf bytes.Buffer
		lg, err := newLogger("", 7, logFormat{json: json, journal: true}, &buf)
		if err != nil {
			t.Fatal(err)
		}
		lg.Error("e")
		lg.Warn("w")
		lg.With("pool", "alpha").Info("i")
		lg.Debug("d")
		lg.notice.Info("n")
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			got = append(got, l[:3])
		}
		if want := "<3> <4> <6> <7> <6>"; strings.Join(got, " ") != want {
			t.Fatalf("json %v: prefixes %v, want %s:\n%s", json, got, want, buf.String())
		}
		if !strings.Contains(buf.String(), "pool") {
			t.Fatalf("attributes lost:\n%s", buf.String())
		}
	}
}

// TestUnderJournal: the proxy binary whose stderr is the stream
// JOURNAL_STREAM names prefixes its lines with their priority; with a
// JOURNAL_STREAM that names another stream (inherited from a parent), it
// does not.
func TestUnderJournal(t *testing.T) {
	bin := buildProxy(t)
	conf := writeConf(t, fmt.Sprintf("alpha:\n  listen: 127.0.0.1:%d\n  redis: true\n  servers:\n    - 127.0.0.1:2:1\n",
		testservers.FreePort(t, "127.0.0.1")))
	for _, match := range []bool{true, false} {
		errFile, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
		if err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Fstat(int(errFile.Fd()), &st); err != nil {
			t.Fatal(err)
		}
		ino := st.Ino
		if !match {
			ino++
		}
		// It logs as it starts (pool listening) and as it stops.
		cmd := exec.Command(bin, "-c", conf, "-s", "0", "--log-format", "json")
		cmd.Env = append(os.Environ(), fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, ino))
		cmd.Stderr = errFile
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		time.Sleep(time.Second)
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatal("still running")
		}
		errFile.Close()
		b, _ := os.ReadFile(errFile.Name())
		sc := bufio.NewScanner(bytes.NewReader(b))
		lines := 0
		for sc.Scan() {
			l := sc.Text()
			if !strings.HasPrefix(l, "<") && !strings.HasPrefix(l, "{") {
				continue // not a log line (a plain error message)
			}
			lines++
			if has := strings.HasPrefix(l, "<"); has != match {
				t.Fatalf("JOURNAL_STREAM matching %v: line %q", match, l)
			}
		}
		if lines == 0 {
			t.Fatalf("no log line on stderr:\n%s", b)
		}
	}
}
