package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// -d/--daemonize. Go cannot fork, so the process the user started (the
// starter) runs the same binary again (the daemon) in a new session, in /,
// with stdin, stdout and stderr on /dev/null, and waits on a pipe for the
// daemon's word: ready once its configuration is loaded, every listener
// open and the pid file written, or the error that stopped it. The starter
// exits 0 on ready and 1 otherwise, so init scripts and start-stop-daemon
// see a failed start; a daemon that dies before it says anything closes the
// pipe too, and the starter exits 1 with its exit status.
const (
	// daemonEnv tells the daemon that it is one and which descriptor is
	// the pipe to its starter. It is internal: no flag, not documented.
	daemonEnv = "SHARDPROXY_DAEMON_READY_FD"
	// readyWord is what the daemon writes on the pipe when ready; anything
	// else is the error that stopped it.
	readyWord = "ready\n"
)

// startDaemon starts the daemon and waits for its word, telling errors on
// stderr; it returns the starter's exit code.
func startDaemon(o *options, stderr io.Writer) int {
	if err := runDaemon(o); err != nil {
		fmt.Fprintf(stderr, "shardproxy: %v\n", err)
		return 1
	}
	return 0
}

// runDaemon starts the daemon and returns nil once it is ready, or its
// error after it has exited.
func runDaemon(o *options) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("daemonize: %w", err)
	}
	args, err := daemonArgs(o)
	if err != nil {
		return fmt.Errorf("daemonize: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("daemonize: %w", err)
	}
	defer r.Close()
	cmd := exec.Command(exe, args...)
	cmd.Args[0] = os.Args[0]
	cmd.Dir = "/"
	// Stdin, Stdout and Stderr left nil are /dev/null.
	cmd.ExtraFiles = []*os.File{w} // descriptor 3
	cmd.Env = append(withoutEnv(os.Environ(), daemonEnv), daemonEnv+"=3")
	for _, name := range []string{"SHARDPROXY_CPUPROFILE", "SHARDPROXY_HEAPPROFILE"} {
		if p := os.Getenv(name); p != "" {
			// The daemon runs in /.
			abs, err := filepath.Abs(p)
			if err != nil {
				return fmt.Errorf("daemonize: %s: %w", name, err)
			}
			cmd.Env = append(withoutEnv(cmd.Env, name), name+"="+abs)
		}
	}
	cmd.SysProcAttr = daemonAttr()
	inheritNothing()
	err = cmd.Start()
	w.Close() // the daemon holds the only write end: its exit ends the read
	if err != nil {
		return fmt.Errorf("daemonize: %w", err)
	}
	word, _ := io.ReadAll(r)
	if string(word) == readyWord {
		return cmd.Process.Release()
	}
	// Not ready: wait for the daemon to exit, so that none is left behind.
	exit := cmd.Wait()
	if len(word) > 0 {
		return errors.New(strings.TrimSpace(string(word)))
	}
	if exit == nil {
		return errors.New("daemon exited before it was ready (exit status 0)")
	}
	return fmt.Errorf("daemon exited before it was ready: %w", exit)
}

// daemonArgs are the daemon's arguments: the flags given to the starter,
// with -c (given or not), -o and -p made absolute, since the daemon runs
// in /.
func daemonArgs(o *options) ([]string, error) {
	var args []string
	for _, f := range o.given {
		switch f.Name {
		case "c", "conf-file", "o", "output", "p", "pid-file":
			continue
		}
		args = append(args, "-"+f.Name+"="+f.Value.String())
	}
	for _, p := range []struct{ flag, path string }{{"c", o.confFile}, {"o", o.output}, {"p", o.pidFile}} {
		if p.path == "" {
			continue
		}
		abs, err := filepath.Abs(p.path)
		if err != nil {
			return nil, fmt.Errorf("-%s %s: %w", p.flag, p.path, err)
		}
		args = append(args, "-"+p.flag+"="+abs)
	}
	return args, nil
}

// inheritNothing marks every descriptor above stderr close-on-exec, so
// that the daemon holds none of those its starter inherited, such as a pipe
// whose reader waits for its end; os/exec still passes ExtraFiles.
func inheritNothing() {
	fds, err := os.ReadDir("/dev/fd")
	if err != nil {
		return
	}
	for _, e := range fds {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			closeOnExec(fd)
		}
	}
}

// withoutEnv is env without the variable name.
func withoutEnv(env []string, name string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// readyPipe is the daemon's end of the pipe to its starter. A nil
// *readyPipe, outside a daemon, does nothing.
type readyPipe struct{ f *os.File }

// takeReadyPipe returns the pipe to the starter when this process is the
// daemon, else nil. It removes daemonEnv from the environment.
func takeReadyPipe() *readyPipe {
	v, ok := os.LookupEnv(daemonEnv)
	if !ok {
		return nil
	}
	os.Unsetenv(daemonEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil
	}
	return &readyPipe{f: os.NewFile(uintptr(fd), "ready pipe")}
}

// ready tells the starter that the daemon serves, and closes the pipe.
func (p *readyPipe) ready() { p.say(readyWord) }

// fail tells the starter the error that stops the daemon, and closes the
// pipe.
func (p *readyPipe) fail(err error) { p.say(err.Error()) }

func (p *readyPipe) say(word string) {
	if p == nil || p.f == nil {
		return
	}
	p.f.WriteString(word)
	p.f.Close()
	p.f = nil
}

// givenFlags are the flags set on the command line, for daemonArgs.
func givenFlags(fs *flag.FlagSet) []*flag.Flag {
	var given []*flag.Flag
	fs.Visit(func(f *flag.Flag) { given = append(given, f) })
	return given
}
