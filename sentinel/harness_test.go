//go:build linux

package sentinel

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

// watcher is New(opt), logging to t unless opt has a Logger, closed when
// the test ends.
func watcher(t *testing.T, opt Options) *Watcher {
	t.Helper()
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	w := New(opt)
	t.Cleanup(w.Close)
	return w
}

// switches records the calls of OnSwitch as "master=addr".
type switches struct {
	mu  sync.Mutex
	got []string
}

func (s *switches) on(master, addr string) {
	s.mu.Lock()
	s.got = append(s.got, master+"="+addr)
	s.mu.Unlock()
}

func (s *switches) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// wait waits until want has been reported.
func (s *switches) wait(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "OnSwitch "+want, func() string {
		if got := s.list(); !slices.Contains(got, want) {
			return fmt.Sprintf("OnSwitch calls %q", got)
		}
		return ""
	})
}

// expect checks that exactly want has been reported, in order.
func (s *switches) expect(t *testing.T, want ...string) {
	t.Helper()
	if got := s.list(); !slices.Equal(got, want) {
		t.Fatalf("OnSwitch calls %q, want %q", got, want)
	}
}

// waitFor polls cond until it returns "" or timeout passes; cond's last
// word is the failure.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v: %s", what, timeout, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitStatus(t *testing.T, w *Watcher, addr string, up bool, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("subscription to %s up=%v", addr, up), func() string {
		if st := w.Status(); st[addr] != up {
			return fmt.Sprintf("Status %v", st)
		}
		return ""
	})
}

func addrs(ss []*testservers.Server) []string {
	a := make([]string, len(ss))
	for i, s := range ss {
		a[i] = s.Addr
	}
	return a
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(testservers.FreePort(t, "127.0.0.1")))
}

// silentAddr is a loopback address that accepts connections and never
// answers, until the test ends.
func silentAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				break
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// connections is total_connections_received in the INFO of a Sentinel.
func connections(t *testing.T, addr string) int {
	t.Helper()
	info, err := testservers.Do(addr, "INFO", "stats")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "total_connections_received:"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no total_connections_received in INFO stats of %s:\n%s", addr, info)
	return 0
}

// testWriter writes log lines to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

// logBuffer collects log lines from several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
