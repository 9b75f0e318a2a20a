//go:build linux

package sdnotify

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listen binds a unixgram socket at addr (a path, or '@' and a name) and
// sets NOTIFY_SOCKET to it for the test.
func listen(t *testing.T, addr string) *net.UnixConn {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv(SocketEnv, addr)
	return conn
}

// receive reads one datagram, or fails the test after a second.
func receive(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(time.Second))
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no datagram: %v", err)
	}
	return string(buf[:n])
}

// nothingMore fails the test if a datagram arrives within 100 ms.
func nothingMore(t *testing.T, conn *net.UnixConn) {
	t.Helper()
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := conn.Read(buf); err == nil {
		t.Fatalf("unexpected datagram %q", buf[:n])
	}
}

// TestNotifySockets sends each helper's message to a path socket and to an
// abstract one, each message one datagram with exactly its fields.
func TestNotifySockets(t *testing.T) {
	for _, tc := range []struct{ name, addr string }{
		{"path", filepath.Join(t.TempDir(), "notify")},
		{"abstract", fmt.Sprintf("@shardproxy-sdnotify-test-%d", os.Getpid())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := listen(t, tc.addr)
			steps := []struct {
				send func() error
				want string
			}{
				{func() error { return Ready("serving 2 pools") }, "READY=1\nSTATUS=serving 2 pools"},
				{func() error { return Ready("") }, "READY=1"},
				{func() error { return Stopping("stopping\non SIGTERM") }, "STOPPING=1\nSTATUS=stopping on SIGTERM"},
				{func() error { return Status("line one\r\nline two") }, "STATUS=line one line two"},
				{func() error { return MainPID(4242, "") }, "MAINPID=4242"},
				{func() error { return MainPID(4242, "upgraded") }, "MAINPID=4242\nSTATUS=upgraded"},
				{func() error { return Notify("WATCHDOG=1") }, "WATCHDOG=1"},
			}
			for _, st := range steps {
				if err := st.send(); err != nil {
					t.Fatal(err)
				}
				if got := receive(t, conn); got != st.want {
					t.Errorf("got %q, want %q", got, st.want)
				}
			}
			nothingMore(t, conn)
		})
	}
}

// TestReloading checks RELOADING=1's MONOTONIC_USEC against the clock read
// just before and after, and that it is CLOCK_MONOTONIC: not after the
// time since boot (/proc/uptime, CLOCK_BOOTTIME, which also counts
// suspends).
func TestReloading(t *testing.T) {
	conn := listen(t, filepath.Join(t.TempDir(), "notify"))
	before, err := MonotonicUsec()
	if err != nil {
		t.Fatal(err)
	}
	if err := Reloading("reloading (SIGUSR1)"); err != nil {
		t.Fatal(err)
	}
	after, _ := MonotonicUsec()
	lines := strings.Split(receive(t, conn), "\n")
	if len(lines) != 3 || lines[0] != "RELOADING=1" || lines[2] != "STATUS=reloading (SIGUSR1)" ||
		!strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("got %q", lines)
	}
	usec, err := strconv.ParseUint(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64)
	if err != nil || usec < before || usec > after {
		t.Fatalf("MONOTONIC_USEC=%d (%v), want within [%d, %d]", usec, err, before, after)
	}
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		t.Fatal(err)
	}
	uptime, err := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	if err != nil {
		t.Fatal(err)
	}
	if float64(usec) > (uptime+1)*1e6 {
		t.Fatalf("MONOTONIC_USEC=%d is after the uptime %.2f s", usec, uptime)
	}
	time.Sleep(50 * time.Millisecond)
	if later, _ := MonotonicUsec(); later-after < 50_000 || later-after > 2_000_000 {
		t.Fatalf("50 ms later the clock moved %d µs", later-after)
	}
}

// TestNotifyUnset: without NOTIFY_SOCKET nothing is sent and nothing
// fails; a value that is neither a path nor '@' is an error.
func TestNotifyUnset(t *testing.T) {
	conn := listen(t, filepath.Join(t.TempDir(), "notify"))
	t.Setenv(SocketEnv, "")
	if err := Ready("x"); err != nil {
		t.Fatalf("unset: %v", err)
	}
	nothingMore(t, conn)
	t.Setenv(SocketEnv, "relative/path")
	if err := Ready("x"); err == nil || !strings.Contains(err.Error(), "neither a path nor an abstract socket") {
		t.Fatalf("relative path: %v", err)
	}
	t.Setenv(SocketEnv, filepath.Join(t.TempDir(), "nobody-listens"))
	if err := Ready("x"); err == nil {
		t.Fatal("no error for a socket nobody listens on")
	}
	if err := MainPID(0, ""); err == nil {
		t.Fatal("MAINPID=0 accepted")
	}
}
