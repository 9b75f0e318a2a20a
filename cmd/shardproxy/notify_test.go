//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/internal/sdnotify"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// notifySocket is a NOTIFY_SOCKET of a test's own, standing for systemd.
type notifySocket struct {
	conn *net.UnixConn
	path string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &notifySocket{conn: conn, path: path}
}

// next returns the next datagram, waiting up to 10 s.
func (n *notifySocket) next(t *testing.T, what string) string {
	t.Helper()
	buf := make([]byte, 8192)
	n.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	k, err := n.conn.Read(buf)
	if err != nil {
		t.Fatalf("%s: no notification: %v", what, err)
	}
	return string(buf[:k])
}

// none fails the test if a datagram arrives within d.
func (n *notifySocket) none(t *testing.T, what string, d time.Duration) {
	t.Helper()
	buf := make([]byte, 8192)
	n.conn.SetReadDeadline(time.Now().Add(d))
	if k, err := n.conn.Read(buf); err == nil {
		t.Fatalf("%s: unexpected notification %q", what, buf[:k])
	}
}

// reloading checks a RELOADING=1 notification asked for by by, sent
// between the monotonic times before and the moment it was read.
func (n *notifySocket) reloading(t *testing.T, by string, before uint64) {
	t.Helper()
	got := n.next(t, by+": RELOADING=1")
	after, err := sdnotify.MonotonicUsec()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(got, "\n")
	if len(lines) != 3 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") ||
		lines[2] != "STATUS=reloading the configuration ("+by+")" {
		t.Fatalf("%s: got %q, want RELOADING=1, MONOTONIC_USEC= and a status", by, got)
	}
	usec, err := strconv.ParseUint(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64)
	if err != nil || usec < before || usec > after {
		t.Fatalf("%s: MONOTONIC_USEC=%d (%v), want within [%d, %d]", by, usec, err, before, after)
	}
}

// monotonic reads CLOCK_MONOTONIC in µs.
func monotonic(t *testing.T) uint64 {
	t.Helper()
	usec, err := sdnotify.MonotonicUsec()
	if err != nil {
		t.Fatal(err)
	}
	return usec
}

// TestSdNotify runs the binary under a NOTIFY_SOCKET of the test's own, as
// systemd would with Type=notify-reload, and reads what it is told:
// READY=1 once the pool's port accepts and the pid file is written; on
// SIGUSR1 RELOADING=1 with the monotonic time, then READY=1 with a status
// saying the file was applied, or refused for a bad file; the same for
// `shardproxy reload`, which also exits 1 when the reload is refused (the
// failure systemd's ExecReload= reports); STOPPING=1 on SIGTERM.
func TestSdNotify(t *testing.T) {
	ns := listenNotify(t)
	r := testservers.Redis(t)
	addr := fmt.Sprintf("127.0.0.1:%d", testservers.FreePort(t, "127.0.0.1"))
	orig := []byte(fmt.Sprintf("alpha:\n  listen: %s\n  redis: true\n  servers:\n    - %s:1\n", addr, r.Addr))
	conf := writeConf(t, string(orig))
	pidFile := filepath.Join(t.TempDir(), "pid")
	bin := buildProxy(t)
	cmd := exec.Command(bin, "-c", conf, "-p", pidFile, "-s", "0", "-v", "6")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+ns.path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("shardproxy's stderr:\n%s", stderr.String())
		}
	})

	// Start: the first notification is READY=1, and by then the port
	// accepts and the pid file names the process.
	if got, want := ns.next(t, "start"), "READY=1\nSTATUS="+readyStatus(1, config.Digest(orig)); got != want {
		t.Fatalf("start: got %q, want %q", got, want)
	}
	if c, err := net.Dial("tcp", addr); err != nil {
		t.Fatalf("READY=1 sent before %s accepts: %v", addr, err)
	} else {
		c.Close()
	}
	if b, err := os.ReadFile(pidFile); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(cmd.Process.Pid) {
		t.Fatalf("READY=1 sent before the pid file is written: %q %v", b, err)
	}
	ns.none(t, "after READY=1", 100*time.Millisecond)

	withBeta, beta := withPool(t, orig, "beta")
	bad := []byte("alpha: [\n")
	reloadCmd := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		c := exec.Command(bin, append([]string{"reload"}, args...)...)
		c.Stdout, c.Stderr = &out, &errb
		err := c.Run()
		if _, ok := err.(*exec.ExitError); err != nil && !ok {
			t.Fatal(err)
		}
		return c.ProcessState.ExitCode(), strings.TrimSpace(out.String()), strings.TrimSpace(errb.String())
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	steps := []struct {
		name   string
		conf   []byte
		by     string // "SIGUSR1", or "shardproxy reload" with args
		args   []string
		status string // READY=1's status after the reload
		exit   int    // shardproxy reload's exit code
		beta   bool   // beta answers afterwards
	}{
		{name: "SIGUSR1, a pool added", conf: withBeta, by: "SIGUSR1", beta: true},
		{name: "SIGUSR1, a bad file", conf: bad, by: "SIGUSR1", beta: true},
		{name: "reload --pid, a bad file", conf: bad, by: "shardproxy reload", args: []string{"--pid", pid}, exit: 1, beta: true},
		{name: "reload -p, the pool removed", conf: orig, by: "shardproxy reload", args: []string{"-p", pidFile}, beta: false},
	}
	running := config.Digest(orig)
	for _, st := range steps {
		if err := os.WriteFile(conf, st.conf, 0o644); err != nil {
			t.Fatal(err)
		}
		want := "READY=1\nSTATUS="
		if bytes.Equal(st.conf, bad) {
			_, err := config.Parse(bad)
			want += reloadStatus(st.by, running, fmt.Errorf("config %s: %w", conf, err))
		} else {
			running = config.Digest(st.conf)
			want += reloadStatus(st.by, running, nil)
		}
		before := monotonic(t)
		if st.by == "SIGUSR1" {
			if err := syscall.Kill(cmd.Process.Pid, syscall.SIGUSR1); err != nil {
				t.Fatal(err)
			}
		} else {
			code, out, errOut := reloadCmd(st.args...)
			status := strings.TrimPrefix(want, "READY=1\nSTATUS=")
			if code != st.exit || (code == 0 && (out != status || errOut != "")) || (code != 0 && (errOut != status || out != "")) {
				t.Fatalf("%s: shardproxy reload exit %d, stdout %q, stderr %q; want exit %d and %q",
					st.name, code, out, errOut, st.exit, status)
			}
		}
		ns.reloading(t, st.by, before)
		if got := ns.next(t, st.name); got != want {
			t.Fatalf("%s: got %q, want %q", st.name, got, want)
		}
		if ping(beta) != st.beta {
			t.Fatalf("%s: beta answers: %v, want %v", st.name, !st.beta, st.beta)
		}
		if !ping(addr) {
			t.Fatalf("%s: alpha does not answer", st.name)
		}
		ns.none(t, st.name+": after READY=1", 50*time.Millisecond)
	}

	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got, want := ns.next(t, "SIGTERM"), "STOPPING=1\nSTATUS=stopping on SIGTERM: answering requests in flight"; got != want {
		t.Fatalf("SIGTERM: got %q, want %q", got, want)
	}
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit 10 s after SIGTERM")
	}
	ns.none(t, "after the exit", 50*time.Millisecond)
}

// TestReloadRequestChecks: the proxy answers `shardproxy reload` from
// another user with a refusal and reloads nothing (run as root, the client
// runs as nobody); the client refuses an answer from a process other than
// the pid it asked for (a socket squatted under another pid's name).
func TestReloadRequestChecks(t *testing.T) {
	t.Run("another user", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root, to run the client as nobody")
		}
		var stderr bytes.Buffer
		p := startProxy(t, &stderr)
		openToAll(t, filepath.Dir(p.cmd.Path))
		c := exec.Command(p.cmd.Path, "reload", "--pid", strconv.Itoa(p.cmd.Process.Pid))
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := c.CombinedOutput()
		want := "not permitted: only root and uid 0 may reload this proxy"
		if c.ProcessState == nil || c.ProcessState.ExitCode() != 1 || strings.TrimSpace(string(out)) != want {
			t.Fatalf("as nobody: %v, %q; want exit 1 and %q", err, out, want)
		}
		p.stop(t)
		if log := stderr.String(); strings.Contains(log, "configuration reloaded") || !strings.Contains(log, "reload request refused: not from root or the proxy's user") {
			t.Fatalf("log:\n%s", log)
		}
	})
	t.Run("squatted socket", func(t *testing.T) {
		other := exec.Command("sleep", "30")
		if err := other.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { other.Process.Kill(); other.Wait() }()
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: reloadSocketName(other.Process.Pid), Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			if c, err := ln.Accept(); err == nil {
				fmt.Fprintln(c, "applied lies")
				c.Close()
			}
		}()
		var out, errb bytes.Buffer
		code := run([]string{"reload", "--pid", strconv.Itoa(other.Process.Pid)}, &out, &errb)
		want := fmt.Sprintf("shardproxy reload: the reload socket of pid %d is held by pid %d\n", other.Process.Pid, os.Getpid())
		if code != 1 || out.Len() != 0 || errb.String() != want {
			t.Fatalf("exit %d, stdout %q, stderr %q; want 1 and %q", code, out.String(), errb.String(), want)
		}
	})
	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{{}, {"--pid", "1", "-p", "x"}, {"--pid", "1", "extra"}} {
			var out, errb bytes.Buffer
			if code := run(append([]string{"reload"}, args...), &out, &errb); code != 2 {
				t.Errorf("reload %q: exit %d (%s), want 2", args, code, errb.String())
			}
		}
	})
}

// TestReloadRequestsCoalesce runs the reload goroutine in process: a
// request made while a reload runs waits for the next one, requests made
// while that one waits join it (whoever asked is named once), and each
// waiting request gets the outcome of the reload that served it.
func TestReloadRequestsCoalesce(t *testing.T) {
	var buf bytes.Buffer
	lg, err := newLogger("", 6, logFormat{}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	l := &signalLoop{log: lg}
	started, release := make(chan string), make(chan error)
	l.startReloads(func(by string) error {
		started <- by
		return <-release
	})
	defer l.Stop()
	if joined := l.requestReload("SIGUSR1", nil); joined {
		t.Fatal("the first request joined another")
	}
	if by := <-started; by != "SIGUSR1" {
		t.Fatalf("first reload asked by %q", by)
	}
	// The first runs: these wait for a second one, together.
	first, second := make(chan error, 1), make(chan error, 1)
	joins := []bool{
		l.requestReload("shardproxy reload", first),
		l.requestReload("SIGUSR1", nil),
		l.requestReload("shardproxy reload", second),
	}
	if joins[0] || !joins[1] || !joins[2] {
		t.Fatalf("joined: %v, want false, true, true", joins)
	}
	release <- nil
	if by := <-started; by != "shardproxy reload and SIGUSR1" {
		t.Fatalf("second reload asked by %q", by)
	}
	refused := fmt.Errorf("bad file")
	release <- refused
	for i, ch := range []chan error{first, second} {
		select {
		case err := <-ch:
			if err != refused {
				t.Fatalf("request %d: outcome %v, want %v", i, err, refused)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("request %d: no outcome", i)
		}
	}
	select {
	case by := <-started:
		t.Fatalf("a third reload, asked by %q", by)
	case <-time.After(100 * time.Millisecond):
	}
	if want := `msg="shardproxy reload and SIGUSR1: reload refused, the running configuration is unchanged" err="bad file"`; !strings.Contains(buf.String(), want) {
		t.Fatalf("log %q lacks %q", buf.String(), want)
	}
}

// TestWatchConfigNotifies: a reload by --watch-config is told to the
// service manager as SIGUSR1's is, for an applied file and a refused one.
func TestWatchConfigNotifies(t *testing.T) {
	ns := listenNotify(t)
	t.Setenv("NOTIFY_SOCKET", ns.path)
	path := filepath.Join(t.TempDir(), "nutcracker.yml")
	two := watchConfText(2)
	if err := os.WriteFile(path, []byte(watchConfText(1)), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &recordingReloader{digest: config.Digest([]byte(watchConfText(1)))}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	notes := &reloadNotes{digest: r.ConfigDigest, log: log}
	stop := watchConfig(path, 10*time.Millisecond, log, notifiedReloader{r, notes})
	defer stop()
	for _, st := range []struct {
		conf string
		want string
	}{
		{two, reloadStatus("--watch-config", config.Digest([]byte(two)), nil)},
		{"alpha: [\n", "reload refused (--watch-config); configuration " + config.Digest([]byte(two)) + " still runs: "},
	} {
		before := monotonic(t)
		if err := os.WriteFile(path, []byte(st.conf), 0o644); err != nil {
			t.Fatal(err)
		}
		ns.reloading(t, "--watch-config", before)
		if got := ns.next(t, "after the reload"); !strings.HasPrefix(got, "READY=1\nSTATUS="+st.want) {
			t.Fatalf("got %q, want READY=1 and %q", got, st.want)
		}
	}
}
