//go:build linux

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

// proxyProcess is a shardproxy binary started by a test.
type proxyProcess struct {
	cmd     *exec.Cmd
	addr    string // the pool's listen address
	conf    string // the configuration file
	stats   string // the stats listener's address
	pidFile string
	done    chan struct{} // closed when the process has exited
	err     error         // cmd.Wait's result, set before done is closed
}

// buildProxy builds the binary into a temporary directory.
func buildProxy(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "shardproxy")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// startProxy builds the binary and starts it in front of two redis-servers
// with -p, -s and -v 6 plus extra flags, its stderr going to stderr. The
// proxy gets a process group of its own, as a shell's background job does:
// then SIGTTIN and SIGTTOU sent to it are not discarded as they would be in
// an orphaned group, and stop it unless it handles them.
func startProxy(t *testing.T, stderr io.Writer, extra ...string) *proxyProcess {
	t.Helper()
	r1, r2 := testservers.Redis(t), testservers.Redis(t)
	port := testservers.FreePort(t, "127.0.0.1")
	conf := writeConf(t, fmt.Sprintf("alpha:\n  listen: 127.0.0.1:%d\n  redis: true\n  servers:\n    - %s:1\n    - %s:1\n",
		port, r1.Addr, r2.Addr))
	return startProxyConf(t, conf, fmt.Sprintf("127.0.0.1:%d", port), stderr, extra...)
}

// startProxyConf starts the binary with the configuration file conf, whose
// first pool listens on addr, as startProxy does.
func startProxyConf(t *testing.T, conf, addr string, stderr io.Writer, extra ...string) *proxyProcess {
	t.Helper()
	stats := testservers.FreePort(t, "127.0.0.1")
	bin := buildProxy(t)
	p := &proxyProcess{addr: addr, conf: conf, stats: fmt.Sprintf("127.0.0.1:%d", stats), pidFile: filepath.Join(t.TempDir(), "pid"), done: make(chan struct{})}
	args := append([]string{"-c", conf, "-p", p.pidFile, "-s", fmt.Sprint(stats), "-a", "127.0.0.1", "-v", "6"}, extra...)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stderr = stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	p.waitFor(t, "listening", func() bool {
		c, err := net.DialTimeout("tcp", p.addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	// The stats port listens before any pool's: a script may read stats
	// as soon as the pool answers.
	c, err := net.DialTimeout("tcp", p.stats, time.Second)
	if err != nil {
		t.Fatalf("the pool's port accepts, the stats port does not: %v", err)
	}
	c.Close()
	return p
}

// check fails the test if the process has exited or is stopped (state T in
// /proc/<pid>/stat).
func (p *proxyProcess) check(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		t.Fatalf("shardproxy exited: %v", p.err)
	default:
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		// Gone from /proc: it exited and Wait reaped it just now.
		select {
		case <-p.done:
			t.Fatalf("shardproxy exited: %v", p.err)
		case <-time.After(time.Second):
			t.Fatal(err)
		}
	}
	// The state follows the command name, which is in parentheses.
	if i := bytes.LastIndexByte(b, ')'); i < 0 || i+2 >= len(b) {
		t.Fatalf("cannot parse /proc stat %q", b)
	} else if state := b[i+2]; state == 'T' || state == 't' {
		t.Fatalf("shardproxy is stopped (state %c)", state)
	}
}

// waitFor polls cond for up to 5 s, failing at once if the process exits
// or stops.
func (p *proxyProcess) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		p.check(t)
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 5 s: not %s", what)
		}
	}
}

// signal sends sig to the process with kill(2), as kill(1), an init
// script or the kernel (SIGTTIN, SIGTTOU for a background job touching its
// terminal) would.
func (p *proxyProcess) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(p.cmd.Process.Pid, sig); err != nil {
		t.Fatalf("kill %v: %v", sig, err)
	}
}

// stop sends SIGTERM and checks the exit status is 0 and the pid file gone.
func (p *proxyProcess) stop(t *testing.T) {
	t.Helper()
	p.signal(t, syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("exit after SIGTERM: %v", p.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit 10 s after SIGTERM")
	}
	if _, err := os.Stat(p.pidFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pid file left behind: %v", err)
	}
}

// load runs clients doing SET and GET through the proxy until stop.
type load struct {
	ops  atomic.Int64
	quit chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	err  error // the first error a client saw
}

// startLoad starts n clients on addr, each on its own connection and keys.
func startLoad(t *testing.T, addr string, n int) *load {
	l := &load{quit: make(chan struct{})}
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer c.Close()
			if err := l.client(c, i); err != nil {
				l.mu.Lock()
				if l.err == nil {
					l.err = err
				}
				l.mu.Unlock()
			}
		}()
	}
	t.Cleanup(l.stop)
	return l
}

// client does SET k v, GET k on c until quit, and returns the first
// unexpected reply or error.
func (l *load) client(c net.Conn, id int) error {
	r := bufio.NewReader(c)
	for n := 0; ; n++ {
		select {
		case <-l.quit:
			return nil
		default:
		}
		key, val := fmt.Sprintf("key:%d:%d", id, n%100), fmt.Sprintf("v%d", n)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(key), key, len(val), val)
		if line, err := r.ReadString('\n'); err != nil || line != "+OK\r\n" {
			return fmt.Errorf("SET %s: %q %v", key, line, err)
		}
		fmt.Fprintf(c, "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", len(key), key)
		want := fmt.Sprintf("$%d\r\n%s\r\n", len(val), val)
		got := make([]byte, len(want))
		if _, err := io.ReadFull(r, got); err != nil || string(got) != want {
			return fmt.Errorf("GET %s: %q %v, want %q", key, got, err, want)
		}
		l.ops.Add(1)
	}
}

// stop ends the clients and waits for them; it may be called twice.
func (l *load) stop() {
	select {
	case <-l.quit:
	default:
		close(l.quit)
	}
	l.wg.Wait()
}

// firstErr is the first error a client saw, if any.
func (l *load) firstErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// TestSignalsKeepServing sends a running proxy, under load, every signal a
// nutcracker setup sends: after each it is alive, not stopped, serving
// without a client error, and its log says what it did. SIGHUP follows a
// logrotate-style rename: the renamed file keeps the earlier lines and a
// new file at the -o path gets the later ones.
func TestSignalsKeepServing(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "log")
	var stderr bytes.Buffer
	p := startProxy(t, &stderr, "-o", logPath)
	ld := startLoad(t, p.addr, 4)
	readLog := func() string { b, _ := os.ReadFile(logPath); return string(b) }

	steps := []struct {
		name   string
		sig    syscall.Signal
		before func(t *testing.T)
		want   string // in the log lines written after the signal; "" for none
	}{
		{"SIGHUP reopens the log file", syscall.SIGHUP, func(t *testing.T) {
			if err := os.Rename(logPath, logPath+".1"); err != nil {
				t.Fatal(err)
			}
		}, `msg="SIGHUP: log file reopened"`},
		// kill -PIPE never ended a Go program (the runtime ends it only
		// for a write to a broken fd 1 or 2: TestBrokenStderrPipe); this
		// step guards against SIGPIPE getting a default action again.
		{"SIGPIPE is ignored", syscall.SIGPIPE, nil, ""},
		{"SIGTTIN raises the level", syscall.SIGTTIN, nil, `msg="SIGTTIN: log level up" verbosity=7 min_level=DEBUG`},
		{"SIGTTOU lowers the level", syscall.SIGTTOU, nil, `msg="SIGTTOU: log level down" verbosity=6 min_level=INFO`},
		{"SIGUSR1 reloads the configuration", syscall.SIGUSR1, nil, `msg="configuration reloaded"`},
		{"SIGTSTP does not stop it", syscall.SIGTSTP, nil, `msg="SIGTSTP: ignored; a stopped proxy would stall every client"`},
	}
	for _, st := range steps {
		ok := t.Run(st.name, func(t *testing.T) {
			if st.before != nil {
				st.before(t)
			}
			seen, ops := len(readLog()), ld.ops.Load()
			p.signal(t, st.sig)
			if st.want != "" {
				p.waitFor(t, "logged "+st.want, func() bool {
					l := readLog()
					return len(l) >= seen && strings.Contains(l[seen:], st.want)
				})
			} else {
				time.Sleep(200 * time.Millisecond)
			}
			p.waitFor(t, "serving the load", func() bool { return ld.ops.Load() >= ops+50 })
			p.check(t)
			if err := ld.firstErr(); err != nil {
				t.Fatalf("client: %v", err)
			}
		})
		if !ok {
			t.Fatalf("stderr:\n%s\nlog:\n%s", stderr.String(), readLog())
		}
	}
	old, err := os.ReadFile(logPath + ".1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(old), "shardproxy started") || strings.Contains(string(old), "SIGHUP") {
		t.Errorf("renamed log file should hold the lines before SIGHUP only:\n%s", old)
	}
	if l := readLog(); strings.Contains(l, "shardproxy started") {
		t.Errorf("new log file holds lines from before SIGHUP:\n%s", l)
	}
	ld.stop()
	if err := ld.firstErr(); err != nil {
		t.Fatalf("client: %v", err)
	}
	p.stop(t)
}

// TestBrokenStderrPipe runs the proxy logging to a stderr pipe whose reader
// is gone, as `shardproxy 2>&1 | logger` after logger ends: every log line
// fails with EPIPE, and the proxy keeps serving and still stops cleanly.
func TestBrokenStderrPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	// The startup lines already meet the broken pipe.
	p := startProxy(t, w)
	w.Close()
	// Signals whose actions log.
	for _, sig := range []syscall.Signal{syscall.SIGTTIN, syscall.SIGHUP, syscall.SIGTTOU} {
		p.signal(t, sig)
		time.Sleep(50 * time.Millisecond)
		p.check(t)
		if got, err := testservers.Do(p.addr, "SET", "k", sig.String()); err != nil || got != "+OK" {
			t.Fatalf("after %v: SET: %q %v", sig, got, err)
		}
		if got, err := testservers.Do(p.addr, "GET", "k"); err != nil || got != sig.String() {
			t.Fatalf("after %v: GET: %q %v", sig, got, err)
		}
	}
	p.stop(t)
}

// TestFatalSignalFromOutside is twemproxy's test_signal: SIGSEGV (and
// SIGBUS) sent with kill are logged in the -o log as nutcracker logs them,
// "signal 11 (SIGSEGV) received, core dumping", and the process then dies
// by that signal (a core dump where enabled; none here: the test sets
// RLIMIT_CORE to 0, which the proxy inherits).
func TestFatalSignalFromOutside(t *testing.T) {
	var was syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_CORE, &was); err == nil {
		syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{Cur: 0, Max: was.Max})
		t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_CORE, &was) })
	}
	for _, sig := range []syscall.Signal{syscall.SIGSEGV, syscall.SIGBUS} {
		t.Run(sig.String(), func(t *testing.T) {
			logFile := filepath.Join(t.TempDir(), "proxy.log")
			p := startProxy(t, io.Discard, "-o", logFile)
			p.signal(t, sig)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				t.Fatalf("still running 10 s after %v", sig)
			}
			var ee *exec.ExitError
			if !errors.As(p.err, &ee) {
				t.Fatalf("exit: %v", p.err)
			}
			ws := ee.Sys().(syscall.WaitStatus)
			if !ws.Signaled() || ws.Signal() != sig {
				t.Fatalf("the process ended with %v (status %d), not by %v", p.err, ws.ExitStatus(), sig)
			}
			b, err := os.ReadFile(logFile)
			if err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("signal %d (SIG%s) received, core dumping", int(sig), map[syscall.Signal]string{syscall.SIGSEGV: "SEGV", syscall.SIGBUS: "BUS"}[sig])
			if !strings.Contains(string(b), want) {
				t.Fatalf("log has no %q:\n%s", want, b)
			}
		})
	}
}
