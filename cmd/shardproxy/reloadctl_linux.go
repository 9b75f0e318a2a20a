package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A running proxy takes reload requests on an abstract unix socket named
// after its pid, so that `shardproxy reload --pid N` (systemd's
// ExecReload=) can ask for a reload and wait for its outcome: a signal
// cannot carry one back, and the sd_notify protocol cannot tell systemd
// that a reload failed. The protocol is one line each way: the client
// writes "reload", the proxy answers "applied <status>" or
// "refused <status>" once the reload has run.
//
// An abstract socket needs no path or permissions to set up; both ends
// check the other with SO_PEERCRED instead: the proxy answers only root
// and its own user (those who may signal it), and the client accepts only
// an answer from the pid it asked for.

// reloadSocketName is the abstract socket of the proxy whose pid is pid.
func reloadSocketName(pid int) string { return "@shardproxy-reload-" + strconv.Itoa(pid) }

// reloadRequestWait bounds how long the proxy waits for a client's request
// line.
const reloadRequestWait = 5 * time.Second

// reloadSocket serves reload requests until stopped.
type reloadSocket struct {
	ln     *net.UnixListener
	sigs   *signalLoop
	digest func() string // the running configuration's digest
	log    *slog.Logger
	quit   chan struct{}
	wg     sync.WaitGroup
	// mu guards conns, the connections being served, closed by stop.
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// listenReloadRequests opens this process's reload socket; requests run
// through sigs' reload goroutine, as SIGUSR1 does, and their answers name
// the configuration digest then running. stop closes the socket and the
// connections being served, and waits for their goroutines.
func listenReloadRequests(sigs *signalLoop, digest func() string, log *slog.Logger) (stop func(), err error) {
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: reloadSocketName(os.Getpid()), Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("reload socket: %w", err)
	}
	s := &reloadSocket{ln: ln, sigs: sigs, digest: digest, log: log, quit: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s.stop, nil
}

func (s *reloadSocket) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			return // closed by stop
		}
		s.mu.Lock()
		select {
		case <-s.quit:
			s.mu.Unlock()
			c.Close()
			return
		default:
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c)
	}
}

// serve answers one client: checks who it is, reads its request, asks for
// the reload and writes its outcome.
func (s *reloadSocket) serve(c *net.UnixConn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	// The request is read before any answer, so that a client is never
	// answered while its request is still being written.
	c.SetReadDeadline(time.Now().Add(reloadRequestWait))
	line, err := bufio.NewReader(io.LimitReader(c, 64)).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "reload" {
		fmt.Fprintf(c, "refused unknown request %q\n", strings.TrimSpace(line))
		return
	}
	cred, err := peerCred(c)
	if err != nil || (cred.Uid != 0 && int(cred.Uid) != os.Geteuid()) {
		s.log.Warn("reload request refused: not from root or the proxy's user", "peer", cred, "err", err)
		fmt.Fprintf(c, "refused not permitted: only root and uid %d may reload this proxy\n", os.Geteuid())
		return
	}
	done := make(chan error, 1)
	if s.sigs.requestReload("shardproxy reload", done) {
		s.log.Info("reload request: a reload is already waiting to run; this one joins it", "pid", cred.Pid)
	} else {
		s.log.Info("reload request: reloading the configuration", "pid", cred.Pid)
	}
	select {
	case err = <-done:
	case <-s.quit:
		fmt.Fprintln(c, "refused the proxy is stopping")
		return
	}
	digest := s.digest()
	if err != nil {
		fmt.Fprintf(c, "refused %s\n", oneLine(reloadStatus("shardproxy reload", digest, err)))
		return
	}
	fmt.Fprintf(c, "applied %s\n", reloadStatus("shardproxy reload", digest, nil))
}

func (s *reloadSocket) stop() {
	s.mu.Lock()
	close(s.quit)
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
}

// peerCred is the process at the other end of c, as the kernel saw it
// when the connection was made.
func peerCred(c *net.UnixConn) (*syscall.Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *syscall.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	return cred, credErr
}

// oneLine makes s one line of the reload protocol.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// runReloadCmd is `shardproxy reload`: it asks a running proxy for a
// reload of its configuration file and waits for the outcome, which it
// prints; it exits 0 when the reload was applied, 1 when it was refused or
// could not be asked for, 2 on a usage error. systemd runs it as the
// unit's ExecReload=, so that `systemctl reload` fails with the reason
// when the proxy refuses the file.
func runReloadCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("shardproxy reload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pid := fs.Int("pid", 0, "process id of the proxy to reload (systemd: $MAINPID)")
	var pidFile string
	fs.StringVar(&pidFile, "p", "", "read the process id from this pid file (-p of the proxy)")
	fs.StringVar(&pidFile, "pid-file", "", "read the process id from this pid file (-p of the proxy)")
	timeout := fs.Duration("timeout", 60*time.Second, "how long to wait for the outcome")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: shardproxy reload (--pid N | -p pid file) [--timeout 60s]\n\n"+
			"Asks the running proxy to reload its configuration file, as SIGUSR1 does, and waits\n"+
			"for the outcome: exit 0 when applied, 1 when refused.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 || (*pid == 0) == (pidFile == "") {
		fmt.Fprintln(stderr, "shardproxy reload: give either --pid or -p")
		return 2
	}
	if pidFile != "" {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			fmt.Fprintf(stderr, "shardproxy reload: %v\n", err)
			return 1
		}
		if *pid, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
			fmt.Fprintf(stderr, "shardproxy reload: pid file %s: %v\n", pidFile, err)
			return 1
		}
	}
	answer, err := askReload(*pid, *timeout)
	if err != nil {
		fmt.Fprintf(stderr, "shardproxy reload: %v\n", err)
		return 1
	}
	if status, ok := strings.CutPrefix(answer, "applied "); ok {
		fmt.Fprintln(stdout, status)
		return 0
	}
	fmt.Fprintln(stderr, strings.TrimPrefix(answer, "refused "))
	return 1
}

// askReload sends a reload request to the proxy of pid and returns its
// answer line.
func askReload(pid int, timeout time.Duration) (string, error) {
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: reloadSocketName(pid), Net: "unix"})
	if err != nil {
		return "", fmt.Errorf("no shardproxy with pid %d takes reload requests: %w", pid, err)
	}
	defer c.Close()
	cred, err := peerCred(c)
	if err != nil {
		return "", err
	}
	if int(cred.Pid) != pid {
		return "", fmt.Errorf("the reload socket of pid %d is held by pid %d", pid, cred.Pid)
	}
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, "reload\n"); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("no outcome from pid %d: %w", pid, err)
	}
	return strings.TrimSuffix(line, "\n"), nil
}
