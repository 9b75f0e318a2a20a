package main

import (
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardproxy/shardproxy/internal/sdnotify"
)

// SIGUSR2 upgrades the binary without refusing a connect, as nginx's
// SIGUSR2 does. The running process (the old one) starts the binary at
// the path it was started from, which may hold a new file by now, with its
// own arguments, handing it a copy of every listening socket: its pools',
// the stats listener and the --metrics-addr listener. The new process
// serves on those whose address its configuration still has instead of
// binding (and binds the others), writes the pid file and tells the old
// one it is ready on a pipe, as a daemon tells its starter (daemon.go).
// Only then does the old process stop accepting: the sockets never close,
// connects wait in their backlog for whichever process accepts. It answers
// what is in flight, closes its clients as SIGTERM does and exits 0,
// leaving the pid file to the new process. If the new process fails (its
// configuration, its start, or no word within upgradeReadyWait), the old
// one logs why, puts its pid back in the pid file and keeps serving.
const (
	// upgradeReadyEnv tells the new process which descriptor is the pipe
	// to the old one; upgradeListenersEnv which descriptors are the
	// listening sockets, as `4="127.0.0.1:22121" 5="/run/proxy.sock"`
	// (descriptor, then the address quoted). Internal: not documented.
	upgradeReadyEnv     = "SHARDPROXY_UPGRADE_READY_FD"
	upgradeListenersEnv = "SHARDPROXY_UPGRADE_LISTENERS"
	// upgradeReadyWait bounds how long the old process waits for the new
	// one's word before it kills it and keeps serving.
	upgradeReadyWait = 30 * time.Second
)

// upgrader runs the upgrades SIGUSR2 asks for, one at a time, in a
// goroutine of its own so that the signal loop keeps serving SIGTERM.
type upgrader struct {
	bin binary
	// daemonize: the new process is put in a session of its own, as the
	// daemon it replaces.
	daemonize bool
	pidFile   string
	log       *logger
	// listeners returns a copy of every listening socket, by address.
	listeners func() (map[string]*os.File, error)

	busy   atomic.Bool   // an upgrade runs, or one succeeded
	served atomic.Int64  // the new process's pid once it serves, else 0
	ready  chan int      // the new process's pid, once it serves
	quit   chan struct{} // closed by stop: a start in progress is abandoned
	once   sync.Once     // closes quit
	wg     sync.WaitGroup
}

// newUpgrader returns the upgrader that runs bin, for a process with the
// options o whose listening sockets listeners copies.
func newUpgrader(bin binary, o *options, log *logger, listeners func() (map[string]*os.File, error)) *upgrader {
	return &upgrader{bin: bin, daemonize: o.daemonize, pidFile: o.pidFile, log: log,
		listeners: listeners, ready: make(chan int, 1), quit: make(chan struct{})}
}

// begin starts an upgrade unless one is running or done; it returns at
// once. The new process's pid comes on u.ready once it serves.
func (u *upgrader) begin() {
	if !u.busy.CompareAndSwap(false, true) {
		u.log.notice.Info("SIGUSR2: an upgrade is already in progress; this one joins it")
		return
	}
	u.log.notice.Info("SIGUSR2: upgrading: starting the binary again, handing it the listeners", "path", u.bin.path)
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		pid, err := u.run()
		if err != nil {
			u.restorePidFile()
			u.log.notice.Error("SIGUSR2: upgrade failed; this process keeps serving", "err", err)
			u.busy.Store(false)
			return
		}
		u.log.notice.Info("SIGUSR2: upgraded: the new process serves; this one stops accepting, answers what is in flight and exits",
			"new_pid", pid)
		// Heard under systemd's default NotifyAccess=main: this process is
		// the main one until then.
		if err := sdnotify.MainPID(pid, "upgraded: pid "+strconv.Itoa(pid)+" serves"); err != nil {
			u.log.Warn("service manager not notified", "err", err)
		}
		u.served.Store(int64(pid))
		u.ready <- pid
	}()
}

// run starts the new process and returns its pid once it is ready, or
// why it is not, once it has exited.
func (u *upgrader) run() (int, error) {
	if u.bin.err != nil {
		return 0, fmt.Errorf("the binary's path: %w", u.bin.err)
	}
	files, err := u.listeners()
	if err != nil {
		return 0, err
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	cmd := u.command(w, files)
	inheritNothing()
	err = cmd.Start()
	w.Close() // the new process holds the only write end: its exit ends the read
	if err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	word := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(r)
		word <- b
	}()
	timer := time.NewTimer(upgradeReadyWait)
	defer timer.Stop()
	var why error
	select {
	case b := <-word:
		if string(b) == readyWord {
			return pid, cmd.Process.Release()
		}
		exit := cmd.Wait()
		switch {
		case len(b) > 0:
			return 0, fmt.Errorf("new process (pid %d): %s", pid, strings.TrimSpace(string(b)))
		case exit == nil:
			return 0, fmt.Errorf("new process (pid %d) exited before it was ready (exit status 0)", pid)
		}
		return 0, fmt.Errorf("new process (pid %d) exited before it was ready: %w", pid, exit)
	case <-timer.C:
		why = fmt.Errorf("new process (pid %d) not ready after %v: killed", pid, upgradeReadyWait)
	case <-u.quit:
		why = fmt.Errorf("stopping before the new process (pid %d) was ready: killed", pid)
	}
	cmd.Process.Kill()
	cmd.Wait()
	<-word
	return 0, why
}

// command is the new process: the binary with this process's arguments,
// stdio and environment, the pipe w as descriptor 3 and the listening
// sockets files after it, named in upgradeListenersEnv.
func (u *upgrader) command(w *os.File, files map[string]*os.File) *exec.Cmd {
	cmd := exec.Command(u.bin.path, u.bin.args...)
	cmd.Args[0] = os.Args[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{w} // descriptor 3
	var list []string
	for _, addr := range slices.Sorted(maps.Keys(files)) {
		cmd.ExtraFiles = append(cmd.ExtraFiles, files[addr])
		list = append(list, strconv.Itoa(2+len(cmd.ExtraFiles))+"="+strconv.Quote(addr))
	}
	env := os.Environ()
	for _, name := range []string{daemonEnv, upgradeReadyEnv, upgradeListenersEnv} {
		env = withoutEnv(env, name)
	}
	cmd.Env = append(env, upgradeReadyEnv+"=3", upgradeListenersEnv+"="+strings.Join(list, " "))
	if u.daemonize {
		cmd.SysProcAttr = daemonAttr()
	}
	return cmd
}

// restorePidFile writes this process's pid in the pid file again, which
// a new process that failed may have taken.
func (u *upgrader) restorePidFile() {
	if u.pidFile == "" {
		return
	}
	if err := os.WriteFile(u.pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		u.log.notice.Error("SIGUSR2: pid file not restored", "err", err)
	}
}

// upgraded is the channel on which the new process's pid comes once it
// serves; nil (never ready) for a nil upgrader.
func (u *upgrader) upgraded() <-chan int {
	if u == nil {
		return nil
	}
	return u.ready
}

// stop abandons an upgrade in progress, killing its new process unless
// it is ready already, and returns once the upgrade's goroutine has ended:
// the pid of the new process that serves, or 0 when none does.
func (u *upgrader) stop() (newPid int) {
	if u == nil {
		return 0
	}
	u.once.Do(func() { close(u.quit) })
	u.wg.Wait()
	return int(u.served.Load())
}

// inheritance is what a process started by an upgrade takes over from
// the old one: the pipe to tell it ready, and the listening sockets by
// address.
type inheritance struct {
	ready     *readyPipe
	listeners map[string]net.Listener
}

// takeInheritance returns what the old process handed over when this
// process was started by an upgrade, else nil, and removes upgradeReadyEnv
// and upgradeListenersEnv from the environment. An error is told to the
// old process too.
func takeInheritance() (*inheritance, error) {
	in, err := readInheritance()
	if err != nil && in != nil {
		in.close()
		in.ready.fail(err)
	}
	if err != nil {
		return nil, err
	}
	return in, nil
}

// readInheritance reads what takeInheritance returns; on error, it
// returns what it has read so far.
func readInheritance() (*inheritance, error) {
	v, ok := os.LookupEnv(upgradeReadyEnv)
	list := os.Getenv(upgradeListenersEnv)
	os.Unsetenv(upgradeReadyEnv)
	os.Unsetenv(upgradeListenersEnv)
	if !ok {
		return nil, nil
	}
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("%s=%q: not a descriptor", upgradeReadyEnv, v)
	}
	in := &inheritance{listeners: map[string]net.Listener{}}
	in.ready = &readyPipe{f: os.NewFile(uintptr(fd), "upgrade ready pipe")}
	for rest := strings.TrimSpace(list); rest != ""; rest = strings.TrimSpace(rest) {
		fdText, after, ok := strings.Cut(rest, "=")
		quoted, qerr := strconv.QuotedPrefix(after)
		fd, ferr := strconv.Atoi(fdText)
		if !ok || qerr != nil || ferr != nil || fd < 3 {
			return in, fmt.Errorf("%s: cannot read %q", upgradeListenersEnv, rest)
		}
		addr, _ := strconv.Unquote(quoted)
		rest = after[len(quoted):]
		f := os.NewFile(uintptr(fd), addr)
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return in, fmt.Errorf("inherited listener %s: %w", addr, err)
		}
		in.listeners[addr] = ln
	}
	return in, nil
}

// take returns, and forgets, the inherited listener at addr, or nil.
func (in *inheritance) take(addr string) net.Listener {
	if in == nil || addr == "" {
		return nil
	}
	ln := in.listeners[addr]
	delete(in.listeners, addr)
	return ln
}

// close closes the listeners not taken.
func (in *inheritance) close() {
	if in == nil {
		return
	}
	for addr, ln := range in.listeners {
		ln.Close()
		delete(in.listeners, addr)
	}
}

// binary is what an upgrade runs: the binary at path with args.
type binary struct {
	path string
	err  error // why path is unknown, or nil
	args []string
}

// findBinary finds, when the process starts, the binary SIGUSR2 runs: the
// path it was started by (argv[0]) when that is absolute and the running
// binary, so that a symbolic link swapped to another version is followed,
// else the running binary's path (os.Executable). Either way a file
// replaced at that path since is what runs.
func findBinary(args []string) binary {
	b := binary{args: args}
	b.path, b.err = os.Executable()
	if b.err != nil {
		return b
	}
	if arg0 := os.Args[0]; filepath.IsAbs(arg0) {
		a, errA := os.Stat(arg0)
		e, errE := os.Stat(b.path)
		if errA == nil && errE == nil && os.SameFile(a, e) {
			b.path = arg0
		}
	}
	return b
}
