//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

// openPTY opens a pseudo-terminal and returns its master and slave ends,
// closed when the test ends; it skips the test where there is none.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	var n uint32
	ioctl := func(req uintptr, arg unsafe.Pointer) {
		t.Helper()
		rc, err := master.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var e syscall.Errno
		rc.Control(func(fd uintptr) { _, _, e = syscall.Syscall(syscall.SYS_IOCTL, fd, req, uintptr(arg)) })
		if e != 0 {
			t.Fatalf("ioctl %#x on /dev/ptmx: %v", req, e)
		}
	}
	var unlock int32
	ioctl(syscall.TIOCSPTLCK, unsafe.Pointer(&unlock))
	ioctl(syscall.TIOCGPTN, unsafe.Pointer(&n))
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		t.Fatal(err)
	}
	// The terminal's output is read (and kept for failure messages) so
	// that nothing writing to it blocks on a full buffer.
	var out bytes.Buffer
	read := make(chan struct{})
	go func() { io.Copy(&out, master); close(read) }()
	t.Cleanup(func() {
		slave.Close()
		master.Close()
		<-read
		if t.Failed() {
			t.Logf("terminal:\n%s", out.String())
		}
	})
	return master, slave
}

// procStat is what the test reads from /proc/<pid>/stat.
type procStat struct {
	state        byte
	pgrp, tpgid  int // the process group; the terminal's foreground group
	utime, stime int // CPU time in clock ticks
}

// readProcStat reads /proc/<pid>/stat.
func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:])) // from the state, field 3, on
	if i < 0 || len(f) < 13 {
		return procStat{}, fmt.Errorf("cannot parse %q", b)
	}
	num := func(k int) int { n, _ := strconv.Atoi(f[k]); return n }
	return procStat{state: f[0][0], pgrp: num(2), tpgid: num(5), utime: num(11), stime: num(12)}, nil
}

// TestBackgroundJobOnTerminal runs the proxy as a shell's background job
// (bash with job control, `proxy &`) logging to the shell's terminal, with
// `stty tostop` set: there the kernel itself sends SIGTTOU to a background
// job that writes to the terminal. The proxy must neither stop (as the
// default action would) nor spin in the write the kernel keeps restarting
// (as catching SIGTTOU alone would); it drops those lines and serves.
func TestBackgroundJobOnTerminal(t *testing.T) {
	bash := testservers.Need(t, "bash")
	_, slave := openPTY(t)
	r := testservers.Redis(t)
	port := testservers.FreePort(t, "127.0.0.1")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	conf := writeConf(t, fmt.Sprintf("alpha:\n  listen: %s\n  redis: true\n  servers:\n    - %s:1\n", addr, r.Addr))
	bin := buildProxy(t)
	dir := t.TempDir()
	pidFile, jobFile, exitFile := filepath.Join(dir, "pid"), filepath.Join(dir, "job"), filepath.Join(dir, "exit")
	script := `set -m; stty tostop; "$@" & echo $! > "$JOB_FILE"; wait $!; echo $? > "$EXIT_FILE"`
	cmd := exec.Command(bash, "--norc", "--noprofile", "-c", script, "bash",
		bin, "-c", conf, "-p", pidFile, "-s", "0", "-v", "7")
	cmd.Env = append(os.Environ(), "JOB_FILE="+jobFile, "EXIT_FILE="+exitFile)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	// bash leads a session whose controlling terminal is the pty.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	pid := 0 // the proxy's, from bash's $!: known even if the proxy never gets far
	t.Cleanup(func() {
		if pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		cmd.Process.Kill()
		<-done
	})

	// check fails if the proxy has exited, stopped, or is no background
	// job of the terminal.
	check := func() procStat {
		t.Helper()
		st, err := readProcStat(pid)
		switch {
		case err != nil:
			t.Fatalf("shardproxy gone: %v", err)
		case st.state == 'T' || st.state == 't':
			t.Fatalf("shardproxy is stopped (state %c)", st.state)
		case st.tpgid <= 0 || st.pgrp == st.tpgid:
			t.Fatalf("shardproxy is no background job: process group %d, terminal's foreground group %d", st.pgrp, st.tpgid)
		}
		return st
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			select {
			case <-done:
				// wait returns when the job ends or stops: over 128 is
				// 128 + the signal that stopped or killed it.
				b, _ := os.ReadFile(exitFile)
				t.Fatalf("bash exited before %s: the job's wait status %q", what, strings.TrimSpace(string(b)))
			default:
			}
			if pid > 0 {
				check()
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 5 s: not %s", what)
			}
		}
	}
	waitFor("job started", func() bool {
		b, _ := os.ReadFile(jobFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return pid > 0
	})
	waitFor("pid file written", func() bool {
		b, _ := os.ReadFile(pidFile)
		return strings.TrimSpace(string(b)) == strconv.Itoa(pid)
	})
	waitFor("listening", func() bool { _, err := testservers.Do(addr, "PING"); return err == nil })

	before := check()
	time.Sleep(500 * time.Millisecond)
	after := check()
	// A write restarted without end shows as a busy process: more than
	// half a core here, against next to nothing when idle.
	if ticks := after.utime + after.stime - before.utime - before.stime; ticks > 10 {
		t.Fatalf("shardproxy is busy while idle: %d clock ticks of CPU in 0.5 s", ticks)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTTOU, syscall.SIGTTIN} {
		syscall.Kill(pid, sig)
		time.Sleep(50 * time.Millisecond)
		check()
		if got, err := testservers.Do(addr, "SET", "k", sig.String()); err != nil || got != "+OK" {
			t.Fatalf("after %v: SET: %q %v", sig, got, err)
		}
	}
	syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-done: // bash wrote the proxy's exit status and ended
	case <-time.After(10 * time.Second):
		t.Fatal("no exit 10 s after SIGTERM")
	}
	pid = 0 // reaped: the number may be reused, leave it alone
	if b, _ := os.ReadFile(exitFile); strings.TrimSpace(string(b)) != "0" {
		t.Fatalf("exit status %q after SIGTERM, want 0", b)
	}
	if _, err := os.Stat(pidFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pid file left behind: %v", err)
	}
}
