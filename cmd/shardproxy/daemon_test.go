//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

// becomeSubreaper makes the test process adopt its orphaned descendants,
// such as a daemon whose starter has exited, until the test ends; the test
// can then reap them and read their exit status. Without it they go to
// pid 1, which in a container may never reap them.
func becomeSubreaper(t *testing.T) {
	t.Helper()
	const prSetChildSubreaper = 36 // PR_SET_CHILD_SUBREAPER, linux/prctl.h
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); e != 0 {
		t.Fatalf("prctl(PR_SET_CHILD_SUBREAPER): %v", e)
	}
	t.Cleanup(func() { syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 0, 0) })
}

// processesOf lists the live processes running the binary at bin (a
// zombie has no executable left and is not listed).
func processesOf(bin string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && exe == bin {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killAtEnd kills, when the test ends, every process still running the
// test's own binary at bin, and reaps those the test adopted.
func killAtEnd(t *testing.T, bin string) {
	t.Cleanup(func() {
		for _, pid := range processesOf(bin) {
			syscall.Kill(pid, syscall.SIGKILL)
			reap(pid, 5*time.Second)
		}
	})
}

// reap waits up to d for the adopted process pid to exit and returns its
// wait status.
func reap(pid int, d time.Duration) (syscall.WaitStatus, error) {
	type result struct {
		ws  syscall.WaitStatus
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var ws syscall.WaitStatus
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		ch <- result{ws, err}
	}()
	select {
	case r := <-ch:
		return r.ws, r.err
	case <-time.After(d):
		return 0, fmt.Errorf("pid %d still running after %v", pid, d)
	}
}

// startDaemonProcess runs bin -d with args in dir, as a shell would, and
// returns its exit code and what it wrote on stdout and stderr. It fails
// the test if the starter takes more than 10 s, or holds its output pipes
// open after it exits (a daemon holding them would hang `$(shardproxy -d)`).
func startDaemonProcess(t *testing.T, bin, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-d"}, args...)...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	// A descriptor the starter inherits, as from a shell or a supervisor:
	// its reader must see EOF once the starter is gone.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd.ExtraFiles = []*os.File{w}
	cmd.WaitDelay = 2 * time.Second
	err = cmd.Run()
	w.Close()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("the starter was still waiting for the daemon after 10 s: stderr %q", errb.String())
	case errors.Is(err, exec.ErrWaitDelay):
		t.Fatalf("the starter exited, but its stdout or stderr stayed open: stderr %q", errb.String())
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("%v: stderr %q", err, errb.String())
	}
	eof := make(chan struct{})
	go func() { io.Copy(io.Discard, r); close(eof) }()
	select {
	case <-eof:
	case <-time.After(2 * time.Second):
		t.Fatal("a descriptor the starter inherited is still open in the daemon")
	}
	return code, out.String(), errb.String()
}

// TestDaemonize starts shardproxy -d with relative -c, -o and -p from a
// directory of its own: the starter exits 0 only when the daemon serves;
// the daemon runs in its own session without a terminal, in /, with stdio
// on /dev/null, has written its pid file and logs to the -o file, which
// are where the relative paths pointed. SIGTERM stops it with status 0 and
// removes the pid file.
func TestDaemonize(t *testing.T) {
	becomeSubreaper(t)
	r := testservers.Redis(t)
	port, stats := testservers.FreePort(t, "127.0.0.1"), testservers.FreePort(t, "127.0.0.1")
	addr, statsAddr := fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("127.0.0.1:%d", stats)
	bin := buildProxy(t)
	killAtEnd(t, bin)
	dir := t.TempDir()
	yml := fmt.Sprintf("alpha:\n  listen: %s\n  redis: true\n  servers:\n    - %s:1\n", addr, r.Addr)
	if err := os.WriteFile(filepath.Join(dir, "conf.yml"), []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := startDaemonProcess(t, bin, dir,
		"-c", "conf.yml", "-o", "shardproxy.log", "-p", "shardproxy.pid", "-s", strconv.Itoa(stats), "-a", "127.0.0.1", "-v", "6")
	if code != 0 || stdout != "" || stderr != "" {
		t.Fatalf("starter: exit %d, stdout %q, stderr %q; want 0 and silence", code, stdout, stderr)
	}
	// Ready means serving: no waiting from here on.
	b, err := os.ReadFile(filepath.Join(dir, "shardproxy.pid"))
	if err != nil {
		t.Fatalf("no pid file once the starter exited: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || !slices.Contains(processesOf(bin), pid) {
		t.Fatalf("pid file %q names no running shardproxy (%v); running: %v", b, err, processesOf(bin))
	}
	if got, err := testservers.Do(addr, "SET", "k", "v"); err != nil || got != "+OK" {
		t.Fatalf("SET once the starter exited: %q %v", got, err)
	}
	if got, err := testservers.Do(addr, "GET", "k"); err != nil || got != "v" {
		t.Fatalf("GET: %q %v", got, err)
	}
	if c, err := net.Dial("tcp", statsAddr); err != nil {
		t.Fatalf("stats port once the starter exited: %v", err)
	} else {
		c.Close()
	}
	checkDetached(t, pid)
	logPath := filepath.Join(dir, "shardproxy.log")
	if b, err := os.ReadFile(logPath); err != nil || !strings.Contains(string(b), "msg=\"shardproxy started\"") {
		t.Fatalf("log file %s: %v\n%s", logPath, err, b)
	}

	syscall.Kill(pid, syscall.SIGTERM)
	ws, err := reap(pid, 10*time.Second)
	if err != nil || !ws.Exited() || ws.ExitStatus() != 0 {
		t.Fatalf("after SIGTERM: wait status %#x, %v; want exit 0", ws, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "shardproxy.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pid file left behind: %v", err)
	}
	if b, _ := os.ReadFile(logPath); !strings.Contains(string(b), "msg=\"shutting down\" signal=terminated") {
		t.Fatalf("log lacks the shutdown:\n%s", b)
	}
}

// checkDetached checks that the daemon pid leads a session of its own
// without a controlling terminal, runs in /, has stdin, stdout and stderr
// on /dev/null and holds no pipe (the one to its starter is closed).
func checkDetached(t *testing.T, pid int) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:])) // from the state, field 3, on
	if sid, tty := f[3], f[4]; sid != strconv.Itoa(pid) || tty != "0" {
		t.Errorf("session %s, terminal %s; want session %d (its own), terminal 0 (none)", sid, tty, pid)
	}
	if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err != nil || cwd != "/" {
		t.Errorf("working directory %q %v, want /", cwd, err)
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range fds {
		target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
		fd, _ := strconv.Atoi(e.Name())
		switch {
		case fd <= 2 && target != "/dev/null":
			t.Errorf("fd %d is %s, want /dev/null", fd, target)
		case strings.HasPrefix(target, "pipe:"):
			t.Errorf("fd %d is a pipe (%s): the pipe to the starter or an inherited one is still open", fd, target)
		}
	}
}

// TestDaemonizeFails starts shardproxy -d where the daemon cannot start:
// the starter exits 1 with the daemon's error on stderr, leaves no process
// and no pid file behind. A daemon that dies before it says anything
// (killed while it waits to read its configuration from a FIFO) makes the
// starter exit 1 with its exit status.
func TestDaemonizeFails(t *testing.T) {
	becomeSubreaper(t)
	bin := buildProxy(t)
	killAtEnd(t, bin)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	free := testservers.FreePort(t, "127.0.0.1")
	pool := func(port int, hash string) string {
		return fmt.Sprintf("alpha:\n  listen: 127.0.0.1:%d\n  hash: %s\n  redis: true\n  servers:\n    - 127.0.0.1:7001:1\n", port, hash)
	}
	tests := []struct {
		name, yml string
		args      []string
		err       string // in the starter's stderr
	}{
		{"configuration error", pool(free, "fnv"), nil, `pool "alpha": key "hash": unknown hash "fnv"`},
		{"pool port in use", pool(busyPort, "fnv1a_64"), nil, fmt.Sprintf("listen tcp 127.0.0.1:%d: bind: address already in use", busyPort)},
		{"stats port in use", pool(free, "fnv1a_64"), []string{"-s", strconv.Itoa(busyPort)}, "address already in use"},
		{"pid file directory missing", pool(free, "fnv1a_64"), []string{"-p", "none/shardproxy.pid"}, "pid file: open "},
		{"log file directory missing", pool(free, "fnv1a_64"), []string{"-o", "none/shardproxy.log"}, "log file: open "},
		{"daemon killed before it is ready", "", nil, "daemon exited before it was ready: signal: killed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			conf := filepath.Join(dir, "conf.yml")
			if tc.yml != "" {
				if err := os.WriteFile(conf, []byte(tc.yml), 0o644); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := syscall.Mkfifo(conf, 0o644); err != nil {
					t.Fatal(err)
				}
				go killWhenBlocked(t, bin)
			}
			args := append([]string{"-c", "conf.yml", "-a", "127.0.0.1", "-s", "0"}, tc.args...)
			start := time.Now()
			code, _, stderr := startDaemonProcess(t, bin, dir, args...)
			if code != 1 || !strings.Contains(stderr, tc.err) {
				t.Fatalf("exit %d, stderr %q; want 1 and %q", code, stderr, tc.err)
			}
			if pids := processesOf(bin); len(pids) > 0 {
				t.Fatalf("processes left after a failed start: %v", pids)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Fatalf("files left in the directory: %v", ents)
			}
			t.Logf("failed in %v: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(stderr))
		})
	}
}

// killWhenBlocked waits for the one daemon running bin, which blocks
// opening its configuration (a FIFO nobody writes), and kills it.
func killWhenBlocked(t *testing.T, bin string) {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, pid := range processesOf(bin) {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
			if len(f) > 3 && f[3] == strconv.Itoa(pid) { // leads its session: the daemon, not the starter
				syscall.Kill(pid, syscall.SIGKILL)
				return
			}
		}
	}
	t.Error("no daemon seen within 5 s")
}

// TestDaemonArgs checks that the daemon gets the starter's flags, with
// the -c, -o and -p paths made absolute (-c even when not given).
func TestDaemonArgs(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		conf, o, p string
	}{
		{"defaults", []string{"-d"}, filepath.Join(wd, "conf/nutcracker.yml"), "", ""},
		{"short relative", []string{"-d", "-c", "a.yml", "-o", "log/x.log", "-p", "../x.pid", "-v", "7", "-s", "0", "-a", "::1",
			"-T", "2", "-i", "100", "-m", "512"}, filepath.Join(wd, "a.yml"), filepath.Join(wd, "log/x.log"), filepath.Join(wd, "../x.pid")},
		{"long absolute", []string{"--daemonize", "--conf-file=/etc/a.yml", "--output=/var/log/x.log", "--pid-file=/run/x.pid",
			"--verbose=3", "--stats-port=1"}, "/etc/a.yml", "/var/log/x.log", "/run/x.pid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(tc.args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			args, err := daemonArgs(o)
			if err != nil {
				t.Fatal(err)
			}
			d, err := parseFlags(args, io.Discard)
			if err != nil {
				t.Fatalf("daemon's args %q: %v", args, err)
			}
			if d.confFile != tc.conf || d.output != tc.o || d.pidFile != tc.p {
				t.Errorf("daemon's args %q: -c %q -o %q -p %q; want %q %q %q", args, d.confFile, d.output, d.pidFile, tc.conf, tc.o, tc.p)
			}
			o.confFile, o.output, o.pidFile, o.given, d.given = "", "", "", nil, nil
			d.confFile, d.output, d.pidFile = "", "", ""
			if !reflect.DeepEqual(o, d) {
				t.Errorf("daemon's args %q give %+v, want %+v", args, *d, *o)
			}
		})
	}
}
