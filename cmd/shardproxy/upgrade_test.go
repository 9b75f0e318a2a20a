//go:build linux

package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

// upgradeSetup is a proxy binary and its files for an upgrade test: a TCP
// pool in front of two redis-servers and a unix socket pool, the stats and
// metrics listeners, the pid and log files, and a NOTIFY_SOCKET of the
// test's own that records what the processes tell systemd.
type upgradeSetup struct {
	bin, dir, conf, pidFile, logFile string
	addr, unixPath, stats, metrics   string
	redis                            [2]string
	args                             []string // the proxy's, without -d
	notify                           *notifyRecorder
}

func newUpgradeSetup(t *testing.T) *upgradeSetup {
	t.Helper()
	becomeSubreaper(t) // the new process outlives the old, its parent
	s := &upgradeSetup{bin: buildProxy(t), dir: t.TempDir()}
	s.redis = [2]string{testservers.Redis(t).Addr, testservers.Redis(t).Addr}
	killAtEnd(t, s.bin)
	free := func() string { return fmt.Sprintf("127.0.0.1:%d", testservers.FreePort(t, "127.0.0.1")) }
	s.addr, s.stats, s.metrics = free(), free(), free()
	s.unixPath = filepath.Join(s.dir, "beta.sock")
	s.conf = filepath.Join(s.dir, "nutcracker.yml")
	s.pidFile = filepath.Join(s.dir, "shardproxy.pid")
	s.logFile = filepath.Join(s.dir, "shardproxy.log")
	s.writeConf(t, "")
	_, statsPort, _ := net.SplitHostPort(s.stats)
	s.args = []string{"-c", s.conf, "-p", s.pidFile, "-o", s.logFile, "-v", "6",
		"-s", statsPort, "-a", "127.0.0.1", "--metrics-addr", s.metrics}
	s.notify = recordNotify(t, filepath.Join(s.dir, "notify"))
	return s
}

// writeConf writes the configuration, with extra appended.
func (s *upgradeSetup) writeConf(t *testing.T, extra string) {
	t.Helper()
	yml := fmt.Sprintf("alpha:\n  listen: %s\n  redis: true\n  servers:\n    - %s:1\n    - %s:1\n"+
		"beta:\n  listen: %s\n  redis: true\n  servers:\n    - %s:1\n",
		s.addr, s.redis[0], s.redis[1], s.unixPath, s.redis[0])
	if err := os.WriteFile(s.conf, []byte(yml+extra), 0o644); err != nil {
		t.Fatal(err)
	}
}

// start starts the proxy in the foreground, its stderr in the test's log
// on failure, and waits until its pid file is written (then it serves).
func (s *upgradeSetup) start(t *testing.T) (*exec.Cmd, chan error) {
	t.Helper()
	cmd := exec.Command(s.bin, s.args...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+s.notify.path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	s.waitPid(t, func(pid int) bool { return pid == cmd.Process.Pid })
	return cmd, done
}

// waitPid waits up to 10 s for the pid file to hold a pid ok accepts, and
// returns it.
func (s *upgradeSetup) waitPid(t *testing.T, ok func(int) bool) int {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		b, _ := os.ReadFile(s.pidFile)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && ok(pid) {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s the pid file holds %q\nlog:\n%s", b, s.log())
		}
	}
}

func (s *upgradeSetup) log() string { b, _ := os.ReadFile(s.logFile); return string(b) }

// waitLog waits up to 10 s for the log to have want after its first from
// bytes.
func (s *upgradeSetup) waitLog(t *testing.T, from int, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if l := s.log(); len(l) >= from && strings.Contains(l[from:], want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s the log lacks %q:\n%s", want, s.log())
		}
	}
}

// serves checks that every listener answers: both pools (SET through one,
// GET through the other, which share a server for the key), the stats
// port and the metrics listener.
func (s *upgradeSetup) serves(t *testing.T, when string) {
	t.Helper()
	serves(t, s.addr, when)
	c, err := net.DialTimeout("unix", s.unixPath, 2*time.Second)
	if err != nil {
		t.Fatalf("%s: unix pool: %v", when, err)
	}
	fmt.Fprintf(c, "*1\r\n$4\r\nPING\r\n")
	buf := make([]byte, 7)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "+PONG\r\n" {
		t.Fatalf("%s: unix pool: PING: %q %v", when, buf[:n], err)
	}
	c.Close()
	for _, addr := range []string{s.stats, s.metrics} {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatalf("%s: %s: %v", when, addr, err)
		}
		c.Close()
	}
}

// notifyRecorder is a NOTIFY_SOCKET: it records the datagrams it gets.
type notifyRecorder struct {
	path string
	mu   sync.Mutex
	msgs []string
}

func recordNotify(t *testing.T, path string) *notifyRecorder {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n := &notifyRecorder{path: path}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			k, err := c.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, string(buf[:k]))
			n.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return n
}

// count is how many datagrams were msg, or began with msg when it ends
// with "*".
func (n *notifyRecorder) count(msg string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	prefix, isPrefix := strings.CutSuffix(msg, "*")
	k := 0
	for _, m := range n.msgs {
		if m == msg || (isPrefix && strings.HasPrefix(m, prefix)) {
			k++
		}
	}
	return k
}

// checkUpgradeNotified checks what the two processes of an upgrade to
// newPid told systemd: READY=1 from each as it started, MAINPID from both
// (the new one's own, the old one's with a status), no STOPPING=1.
func checkUpgradeNotified(t *testing.T, n *notifyRecorder, newPid int) {
	t.Helper()
	pid := strconv.Itoa(newPid)
	for _, c := range []struct {
		msg  string
		want int
	}{
		{"READY=1*", 2},
		{"MAINPID=" + pid, 1},
		{"MAINPID=" + pid + "\nSTATUS=upgraded: pid " + pid + " serves", 1},
		{"STOPPING=1*", 0},
	} {
		if got := n.count(c.msg); got != c.want {
			n.mu.Lock()
			t.Errorf("%q sent %d times, want %d; got %q", c.msg, got, c.want, n.msgs)
			n.mu.Unlock()
		}
	}
}

// checkLoad fails the test on any connect refused or failure of the load,
// and logs its figures.
func checkLoad(t *testing.T, ld *connectLoad, when string) {
	t.Helper()
	t.Logf("load %s: %v", when, ld)
	if n := ld.refused.Load(); n != 0 {
		t.Errorf("load %s: %d connects refused", when, n)
	}
	if f := ld.failures(); len(f) > 0 {
		t.Errorf("load %s: %d failures, the first:\n%s", when, len(ld.errs), strings.Join(f, "\n"))
	}
}

// replaceBinary puts a new file at the binary's path, as a package
// upgrade does (written aside, renamed over): the running process keeps
// the old, deleted, file.
func replaceBinary(t *testing.T, bin string, content []byte) {
	t.Helper()
	tmp := bin + ".new"
	if err := os.WriteFile(tmp, content, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
}

// TestUpgrade upgrades the binary with SIGUSR2 under a load of 20 clients
// that connect, run INCR, SET and GET, and connect again, through the TCP
// pool, after the binary's file was replaced on disk. The new process runs
// the new file, with the old one's arguments, on the old one's sockets
// (the TCP and unix pools', the stats and metrics listeners); it writes its
// pid in the pid file and tells systemd MAINPID, and the old one exits 0.
// No connect is refused, no request is answered wrongly or lost (see
// connectLoad). The new process then serves every listener and stops with
// SIGTERM as usual, removing the pid file and the unix socket.
func TestUpgrade(t *testing.T) {
	s := newUpgradeSetup(t)
	old, oldDone := s.start(t)
	oldPid := old.Process.Pid
	s.serves(t, "before the upgrade")
	ld := startConnectLoad(t, s.addr, "up", 20)
	time.Sleep(300 * time.Millisecond)
	b, err := os.ReadFile(s.bin)
	if err != nil {
		t.Fatal(err)
	}
	replaceBinary(t, s.bin, b)
	before := ld.requests.Load()
	old.Process.Signal(syscall.SIGUSR2)
	select {
	case err := <-oldDone:
		if err != nil {
			t.Fatalf("old process: %v, want exit 0\nlog:\n%s", err, s.log())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("old process still running 15 s after SIGUSR2\nlog:\n%s", s.log())
	}
	newPid := s.waitPid(t, func(pid int) bool { return pid != oldPid })
	atExit := ld.requests.Load()
	time.Sleep(300 * time.Millisecond)
	ld.stop()
	checkLoad(t, ld, "through the upgrade")
	t.Logf("requests answered: %d before SIGUSR2, %d until the old process exited, %d after",
		before, atExit-before, ld.requests.Load()-atExit)
	if ld.requests.Load() < atExit+100 {
		t.Errorf("the new process answered %d requests of the load in 300 ms", ld.requests.Load()-atExit)
	}
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", newPid)); err != nil || exe != s.bin {
		t.Errorf("the new process runs %q (%v), want the file now at %s", exe, err, s.bin)
	}
	if running := processesOf(s.bin); !slices.Equal(running, []int{newPid}) {
		t.Errorf("running %v, want the new process %d alone", running, newPid)
	}
	if err := syscall.Kill(oldPid, 0); err == nil {
		t.Errorf("the old process %d is still there", oldPid)
	}
	checkUpgradeNotified(t, s.notify, newPid)
	s.serves(t, "after the upgrade")
	l := s.log()
	for _, want := range []string{
		`msg="SIGUSR2: upgraded: the new process serves; this one stops accepting, answers what is in flight and exits" new_pid=` + strconv.Itoa(newPid),
		`msg="shutting down: upgraded" new_pid=` + strconv.Itoa(newPid),
		`msg="shardproxy started" version=`,
		`pid=` + strconv.Itoa(newPid) + ` daemon=false upgrade=true`,
	} {
		if !strings.Contains(l, want) {
			t.Errorf("log lacks %q:\n%s", want, l)
		}
	}
	syscall.Kill(newPid, syscall.SIGTERM)
	if ws, err := reap(newPid, 10*time.Second); err != nil || !ws.Exited() || ws.ExitStatus() != 0 {
		t.Fatalf("new process after SIGTERM: wait status %#x, %v; want exit 0", ws, err)
	}
	for _, p := range []string{s.pidFile, s.unixPath} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left behind after SIGTERM: %v", p, err)
		}
	}
}

// TestUpgradeFails sends SIGUSR2 when the new process cannot serve: its
// configuration was made invalid on disk, a new pool's port is taken, the
// binary at the path exits at once. Each time the old process logs why,
// keeps the pid file and every listener (the unix socket's path too) and
// serves a load of 4 clients without a refused connect or a failure; a
// last SIGUSR2, with the files set right, upgrades.
func TestUpgradeFails(t *testing.T) {
	s := newUpgradeSetup(t)
	old, oldDone := s.start(t)
	oldPid := old.Process.Pid
	ld := startConnectLoad(t, s.addr, "fails", 4)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	good, err := os.ReadFile(s.bin)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		setUp func(t *testing.T)
		want  string // in the old process's log line
	}{
		{"invalid configuration", func(t *testing.T) { s.writeConf(t, "gamma: [\n") },
			`err="new process (pid %d): config ` + s.conf + `: bad YAML`},
		{"new pool's port taken", func(t *testing.T) {
			s.writeConf(t, "gamma:\n  listen: "+busy.Addr().String()+"\n  redis: true\n  servers:\n    - "+s.redis[0]+":1\n")
		}, `err="new process (pid %d): pool \"gamma\": key \"listen\": listen tcp ` + busy.Addr().String() + `: bind: address already in use (line 13)"`},
		{"binary exits before ready", func(t *testing.T) {
			s.writeConf(t, "")
			replaceBinary(t, s.bin, []byte("#!/bin/sh\nexit 3\n"))
		}, `err="new process (pid %d) exited before it was ready: exit status 3"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.setUp(t)
			from := len(s.log())
			old.Process.Signal(syscall.SIGUSR2)
			s.waitLog(t, from, `msg="SIGUSR2: upgrade failed; this process keeps serving"`)
			line := s.log()[from:]
			line = line[strings.Index(line, `msg="SIGUSR2: upgrade failed`):]
			line = line[:strings.IndexByte(line, '\n')]
			var newPid int
			if _, err := fmt.Sscanf(line[strings.Index(line, "(pid "):], "(pid %d)", &newPid); err != nil {
				t.Fatalf("log line without the new pid: %s", line)
			}
			if want := fmt.Sprintf(tc.want, newPid); !strings.Contains(line, want) {
				t.Fatalf("log line %s\nwant %s", line, want)
			}
			if err := syscall.Kill(newPid, 0); err == nil {
				t.Errorf("the new process %d is still there", newPid)
			}
			if pid := s.waitPid(t, func(int) bool { return true }); pid != oldPid {
				t.Errorf("pid file holds %d, want the old process's %d", pid, oldPid)
			}
			select {
			case err := <-oldDone:
				t.Fatalf("the old process exited: %v\nlog:\n%s", err, s.log())
			default:
			}
			requests := ld.requests.Load()
			s.serves(t, "after the failed upgrade")
			time.Sleep(100 * time.Millisecond)
			if ld.requests.Load() < requests+100 {
				t.Errorf("the load got %d requests answered in 100 ms", ld.requests.Load()-requests)
			}
		})
	}
	s.writeConf(t, "")
	replaceBinary(t, s.bin, good)
	old.Process.Signal(syscall.SIGUSR2)
	select {
	case err := <-oldDone:
		if err != nil {
			t.Fatalf("old process: %v, want exit 0", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("old process still running 15 s after the last SIGUSR2\nlog:\n%s", s.log())
	}
	newPid := s.waitPid(t, func(pid int) bool { return pid != oldPid })
	s.serves(t, "after the upgrade")
	ld.stop()
	checkLoad(t, ld, "through the failed upgrades and the last one")
	syscall.Kill(newPid, syscall.SIGTERM)
	if ws, err := reap(newPid, 10*time.Second); err != nil || !ws.Exited() || ws.ExitStatus() != 0 {
		t.Fatalf("new process after SIGTERM: wait status %#x, %v; want exit 0", ws, err)
	}
}

// TestUpgradeDaemon upgrades a daemon (-d) under the load of TestUpgrade:
// the new process is a daemon too (a session of its own, in /, stdio on
// /dev/null, no pipe left open), the pid file holds its pid, the old
// daemon exits 0, no connect is refused and no request lost or answered
// wrongly, and systemd is told the new MAINPID.
func TestUpgradeDaemon(t *testing.T) {
	s := newUpgradeSetup(t)
	t.Setenv("NOTIFY_SOCKET", s.notify.path)
	code, stdout, stderr := startDaemonProcess(t, s.bin, s.dir, s.args...)
	if code != 0 || stdout != "" || stderr != "" {
		t.Fatalf("starter: exit %d, stdout %q, stderr %q; want 0 and silence", code, stdout, stderr)
	}
	oldPid := readPid(t, s.pidFile)
	ld := startConnectLoad(t, s.addr, "daemon", 20)
	time.Sleep(300 * time.Millisecond)
	syscall.Kill(oldPid, syscall.SIGUSR2)
	if ws, err := reap(oldPid, 15*time.Second); err != nil || !ws.Exited() || ws.ExitStatus() != 0 {
		t.Fatalf("old daemon after SIGUSR2: wait status %#x, %v; want exit 0\nlog:\n%s", ws, err, s.log())
	}
	newPid := s.waitPid(t, func(pid int) bool { return pid != oldPid })
	atExit := ld.requests.Load()
	time.Sleep(300 * time.Millisecond)
	ld.stop()
	checkLoad(t, ld, "through the upgrade")
	if ld.requests.Load() < atExit+100 {
		t.Errorf("the new daemon answered %d requests of the load in 300 ms", ld.requests.Load()-atExit)
	}
	if running := processesOf(s.bin); !slices.Equal(running, []int{newPid}) {
		t.Errorf("running %v, want the new daemon %d alone", running, newPid)
	}
	checkDetached(t, newPid)
	checkUpgradeNotified(t, s.notify, newPid)
	s.serves(t, "after the upgrade")
	if l := s.log(); !strings.Contains(l, `pid=`+strconv.Itoa(newPid)+` daemon=true upgrade=true`) {
		t.Errorf("log lacks the new daemon's start:\n%s", l)
	}
	syscall.Kill(newPid, syscall.SIGTERM)
	if ws, err := reap(newPid, 10*time.Second); err != nil || !ws.Exited() || ws.ExitStatus() != 0 {
		t.Fatalf("new daemon after SIGTERM: wait status %#x, %v; want exit 0", ws, err)
	}
	if _, err := os.Stat(s.pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file left behind after SIGTERM: %v", err)
	}
}
