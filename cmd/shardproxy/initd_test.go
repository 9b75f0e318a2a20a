//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

// debianInitScript is the init script of Debian's nutcracker package.
const debianInitScript = "/etc/init.d/nutcracker"

// initScript is a copy of Debian's nutcracker init script that runs
// shardproxy from files of the test's own: the script sources
// defaultFile (for DAEMON and DAEMON_OPTS, as /etc/default/nutcracker does
// on a machine) and keeps its pid file in runDir.
type initScript struct {
	path, defaultFile, runDir, pidFile, conf string
}

// newInitScript copies Debian's init script into dir with its paths moved
// into dir, and writes the defaults file that points it at bin with opts.
func newInitScript(t *testing.T, dir, bin, opts string) *initScript {
	t.Helper()
	b, err := os.ReadFile(debianInitScript)
	if err != nil {
		t.Fatal(err)
	}
	s := &initScript{
		path:        filepath.Join(dir, "nutcracker.init"),
		defaultFile: filepath.Join(dir, "default"),
		runDir:      filepath.Join(dir, "run"),
		conf:        filepath.Join(dir, "nutcracker.yml"),
	}
	s.pidFile = filepath.Join(s.runDir, "nutcracker.pid")
	script := string(b)
	for _, r := range []struct{ old, new string }{
		{"/etc/default/$NAME", s.defaultFile},
		{"CONFFILE=/etc/nutcracker/nutcracker.yml", "CONFFILE=" + s.conf},
		{"/run/nutcracker", s.runDir}, // PIDFILE, and the mkdir, chown and chmod before start
	} {
		if !strings.Contains(script, r.old) {
			t.Fatalf("%s no longer has %q: the test needs updating", debianInitScript, r.old)
		}
		script = strings.ReplaceAll(script, r.old, r.new)
	}
	if err := os.WriteFile(s.path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	// As an operator writes /etc/default/nutcracker (see deploy/README.md).
	defaults := fmt.Sprintf("DAEMON=%s\nDAEMON_OPTS=\"-c %s -p %s %s\"\n", bin, s.conf, s.pidFile, opts)
	if err := os.WriteFile(s.defaultFile, []byte(defaults), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// run runs the script with one action and returns its exit code and
// output. The redirect to systemctl, which Debian's init functions do for
// scripts under /etc/init.d when systemd runs, is off.
func (s *initScript) run(t *testing.T, action string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", s.path, action)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "SYSTEMCTL_SKIP_REDIRECT=1"}
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	t.Logf("%s: %v\n%s", action, err, out)
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil || errors.Is(err, exec.ErrWaitDelay):
		t.Fatalf("%s %s: not done after 15 s (%v):\n%s", s.path, action, err, out)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	case err != nil:
		t.Fatalf("%s %s: %v\n%s", s.path, action, err, out)
	}
	return 0, string(out)
}

// openToAll lets every user into dir and its parent (a test's temporary
// directories are root's alone), for the nutcracker user to reach the
// binary, the configuration and the log directory.
func openToAll(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDebianInitScript runs shardproxy -d under Debian's nutcracker init
// script, which starts it with start-stop-daemon as the nutcracker user:
// start returns once it serves, as that user; reload (SIGHUP) reopens the
// log file and it keeps serving; SIGUSR2 upgrades it to a new daemon, as
// that user, whose pid is in the pid file; status finds that one through
// the pid file; stop ends it (exit 0) and its pid file. A start whose listen port is
// taken fails, with the reason, and leaves no process and no pid file.
func TestDebianInitScript(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root, to run Debian's init script, which starts the proxy as the nutcracker user")
	}
	if _, err := os.Stat(debianInitScript); err != nil {
		t.Skipf("skipped: %v: Debian's nutcracker package is not installed (test.sh installs it)", err)
	}
	e := setUpInitScript(t)
	pid := 0 // the daemon's
	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"start", func(t *testing.T) {
			if code, out := e.s.run(t, "start"); code != 0 {
				t.Fatalf("exit %d:\n%s", code, out)
			}
			pid = readPid(t, e.s.pidFile)
			if running := processesOf(e.bin); !slices.Equal(running, []int{pid}) {
				t.Fatalf("pid file says %d, running: %v", pid, running)
			}
			checkUser(t, pid, e.uid, e.gid)
			serves(t, e.addr, "after start")
		}},
		{"reload", func(t *testing.T) {
			if err := os.Rename(e.logFile, e.logFile+".1"); err != nil {
				t.Fatal(err)
			}
			if code, out := e.s.run(t, "reload"); code != 0 {
				t.Fatalf("exit %d:\n%s", code, out)
			}
			waitForFile(t, e.logFile, `msg="SIGHUP: log file reopened"`)
			if b, _ := os.ReadFile(e.logFile + ".1"); !strings.Contains(string(b), `msg="shardproxy started"`) {
				t.Fatalf("the renamed log lacks the start:\n%s", b)
			}
			if again := readPid(t, e.s.pidFile); again != pid || !slices.Contains(processesOf(e.bin), pid) {
				t.Fatalf("pid file %d, running %v; want %d still running", again, processesOf(e.bin), pid)
			}
			serves(t, e.addr, "after reload")
		}},
		{"upgrade with SIGUSR2", func(t *testing.T) {
			// As an operator upgrades: kill -USR2 $(cat the pid file).
			syscall.Kill(pid, syscall.SIGUSR2)
			if ws, err := reap(pid, 15*time.Second); err != nil || !ws.Exited() || ws.ExitStatus() != 0 {
				t.Fatalf("old daemon: wait status %#x, %v; want exit 0", ws, err)
			}
			newPid := readPid(t, e.s.pidFile)
			if running := processesOf(e.bin); newPid == pid || !slices.Equal(running, []int{newPid}) {
				t.Fatalf("pid file says %d (was %d), running: %v", newPid, pid, running)
			}
			pid = newPid
			checkUser(t, pid, e.uid, e.gid)
			checkDetached(t, pid)
			serves(t, e.addr, "after the upgrade")
		}},
		{"status while running", func(t *testing.T) {
			if code, out := e.s.run(t, "status"); code != 0 || !strings.Contains(out, "is running") {
				t.Fatalf("exit %d:\n%s", code, out)
			}
		}},
		{"stop", func(t *testing.T) {
			if code, out := e.s.run(t, "stop"); code != 0 {
				t.Fatalf("exit %d:\n%s", code, out)
			}
			if ws, err := reap(pid, 5*time.Second); err != nil || !ws.Exited() || ws.ExitStatus() != 0 {
				t.Fatalf("wait status %#x, %v; want exit 0", ws, err)
			}
			if _, err := os.Stat(e.s.pidFile); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("pid file after stop: %v", err)
			}
			if b, _ := os.ReadFile(e.logFile); !strings.Contains(string(b), `msg="shutting down" signal=terminated`) {
				t.Fatalf("the log lacks the shutdown:\n%s", b)
			}
		}},
		{"status after stop", func(t *testing.T) {
			if code, out := e.s.run(t, "status"); code == 0 || !strings.Contains(out, "is not running") {
				t.Fatalf("exit %d:\n%s", code, out)
			}
		}},
		{"start with the port taken", e.failedStart},
	}
	for _, st := range steps {
		if !t.Run(st.name, st.run) {
			t.FailNow() // the later steps build on this one
		}
	}
}

// initScriptEnv is what TestDebianInitScript runs: the script, the binary
// it starts, the pool's address and the log file, and the nutcracker
// user's ids.
type initScriptEnv struct {
	s                         *initScript
	bin, addr, redis, logFile string
	uid, gid                  int
}

// setUpInitScript builds the binary, starts a redis-server and writes a
// configuration with a pool in front of it, and the script; the nutcracker
// user may read the binary and the configuration and write the log
// directory.
func setUpInitScript(t *testing.T) *initScriptEnv {
	t.Helper()
	nc, err := user.Lookup("nutcracker")
	if err != nil {
		t.Fatalf("%s is there but the nutcracker user is not: %v", debianInitScript, err)
	}
	e := &initScriptEnv{redis: testservers.Redis(t).Addr}
	e.uid, _ = strconv.Atoi(nc.Uid)
	e.gid, _ = strconv.Atoi(nc.Gid)
	becomeSubreaper(t)
	port, stats := testservers.FreePort(t, "127.0.0.1"), testservers.FreePort(t, "127.0.0.1")
	e.addr = fmt.Sprintf("127.0.0.1:%d", port)
	e.bin = buildProxy(t)
	openToAll(t, filepath.Dir(e.bin))
	killAtEnd(t, e.bin)
	dir := t.TempDir()
	openToAll(t, dir)
	logDir := filepath.Join(dir, "log")
	if err := os.Mkdir(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(logDir, e.uid, e.gid); err != nil {
		t.Fatal(err)
	}
	e.logFile = filepath.Join(logDir, "shardproxy.log")
	e.s = newInitScript(t, dir, e.bin, fmt.Sprintf("-o %s -s %d -a 127.0.0.1 -v 6", e.logFile, stats))
	e.writeConf(t, e.addr)
	return e
}

// writeConf writes the configuration: one pool listening on listen in
// front of the redis-server.
func (e *initScriptEnv) writeConf(t *testing.T, listen string) {
	t.Helper()
	yml := fmt.Sprintf("alpha:\n  listen: %s\n  redis: true\n  servers:\n    - %s:1\n", listen, e.redis)
	if err := os.WriteFile(e.s.conf, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
}

// failedStart starts with the pool's port taken, which -t does not see:
// the script fails with the reason, and no process or pid file is left.
func (e *initScriptEnv) failedStart(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	e.writeConf(t, busy.Addr().String())
	code, out := e.s.run(t, "start")
	if code == 0 || !strings.Contains(out, "address already in use") {
		t.Fatalf("exit %d, want non-zero and the reason:\n%s", code, out)
	}
	if running := processesOf(e.bin); len(running) > 0 {
		t.Fatalf("processes left after a failed start: %v", running)
	}
	if _, err := os.Stat(e.s.pidFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pid file after a failed start: %v", err)
	}
}

// readPid reads the pid in the pid file at path.
func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file %s: %q", path, b)
	}
	return pid
}

// checkUser checks that every user id and group id of pid (real,
// effective, saved, filesystem) are uid and gid.
func checkUser(t *testing.T, pid, uid, gid int) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) != 5 || (f[0] != "Uid:" && f[0] != "Gid:") {
			continue
		}
		want := strconv.Itoa(uid)
		if f[0] == "Gid:" {
			want = strconv.Itoa(gid)
		}
		for _, id := range f[1:] {
			if id != want {
				t.Fatalf("/proc/%d/status: %s, want %s throughout", pid, strings.TrimSpace(line), want)
			}
		}
	}
}

// serves checks that the proxy at addr answers PING, SET and GET.
func serves(t *testing.T, addr, when string) {
	t.Helper()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"PING"}, "+PONG"},
		{[]string{"SET", "k", when}, "+OK"},
		{[]string{"GET", "k"}, when},
	} {
		if got, err := testservers.Do(addr, c.args...); err != nil || got != c.want {
			t.Fatalf("%s: %s: %q %v, want %q", when, c.args[0], got, err, c.want)
		}
	}
}

// waitForFile waits up to 5 s for the file at path to hold want.
func waitForFile(t *testing.T, path, want string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 5 s, %s lacks %q:\n%s", path, want, b)
		}
	}
}
