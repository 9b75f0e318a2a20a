// Package testservers starts real redis-server, memcached and nutcracker
// processes on free loopback ports for integration tests, and stops them when
// the test ends. Nothing here is a mock: every server is the real program.
package testservers

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/freeport"
)

// Server is one running server process.
type Server struct {
	Host string // loopback address it listens on
	Port int
	Addr string // host:port
	Cmd  *exec.Cmd
	done chan struct{} // closed when Cmd has exited
	name string
	args []string
	tb   testing.TB
	mu   sync.Mutex
}

var portMu sync.Mutex
var handedOut = map[int]bool{}

// FreePort returns a TCP port on host that was free a moment ago and that this
// process has not handed out before. It is taken below the system's
// ephemeral range (ip_local_port_range): a port from that range, which is
// what listening on port 0 gives, can be taken meanwhile by any outgoing
// connection as its source port, and a server or proxy told to listen on it
// then fails with "address already in use".
func FreePort(tb testing.TB, host string) int {
	tb.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	p, err := freeport.Pick(host, func(p int) bool { return handedOut[p] })
	if err != nil {
		tb.Fatal(err)
	}
	handedOut[p] = true
	return p
}

// Need fails the test when a program is missing; the README's test command
// installs every program the tests use.
func Need(tb testing.TB, program string) string {
	tb.Helper()
	p, err := exec.LookPath(program)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"} {
			if _, e := os.Stat(filepath.Join(dir, program)); e == nil {
				return filepath.Join(dir, program)
			}
		}
		tb.Fatalf("%s not installed: run the README's test command, which installs it", program)
	}
	return p
}

// Redis starts redis-server on a free port of 127.0.0.1 with persistence off.
// extra are further redis-server arguments, such as "--requirepass", "pw".
func Redis(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	return RedisOn(tb, "127.0.0.1", FreePort(tb, "127.0.0.1"), extra...)
}

// RedisOn starts redis-server on host:port.
func RedisOn(tb testing.TB, host string, port int, extra ...string) *Server {
	tb.Helper()
	bin := Need(tb, "redis-server")
	args := []string{"--port", strconv.Itoa(port), "--bind", host, "--save", "", "--appendonly", "no",
		"--daemonize", "no", "--protected-mode", "no", "--loglevel", "warning", "--dir", tb.TempDir()}
	args = append(args, extra...)
	s := &Server{Host: host, Port: port, Addr: net.JoinHostPort(host, strconv.Itoa(port)), name: bin, args: args, tb: tb}
	s.start()
	return s
}

// Memcached starts memcached on a free port of 127.0.0.1.
func Memcached(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	return MemcachedOn(tb, "127.0.0.1", FreePort(tb, "127.0.0.1"), extra...)
}

// MemcachedOn starts memcached on host:port (TCP only).
func MemcachedOn(tb testing.TB, host string, port int, extra ...string) *Server {
	tb.Helper()
	bin := Need(tb, "memcached")
	args := []string{"-l", host, "-p", strconv.Itoa(port), "-U", "0", "-m", "64", "-t", "1"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	args = append(args, extra...)
	s := &Server{Host: host, Port: port, Addr: net.JoinHostPort(host, strconv.Itoa(port)), name: bin, args: args, tb: tb}
	s.start()
	return s
}

// Nutcracker starts nutcracker with the given YAML configuration. The
// listen address to use is the caller's business (usually a FreePort); the
// stats port is chosen here. It waits until every address in waitAddrs
// accepts connections.
func Nutcracker(tb testing.TB, yaml string, waitAddrs ...string) *Server {
	tb.Helper()
	return NutcrackerWith(tb, yaml, NutcrackerOptions{}, waitAddrs...)
}

// NutcrackerOptions are nutcracker flags beyond the configuration file; the
// zero value leaves nutcracker's defaults.
type NutcrackerOptions struct {
	// StatsInterval is -i: how often nutcracker aggregates the counters its
	// stats port serves. Its default, 30 s, is too slow for a test that
	// reads counters after a fault.
	StatsInterval time.Duration
}

// NutcrackerWith is Nutcracker with further flags.
func NutcrackerWith(tb testing.TB, yaml string, opt NutcrackerOptions, waitAddrs ...string) *Server {
	tb.Helper()
	bin := Need(tb, "nutcracker")
	dir := tb.TempDir()
	conf := filepath.Join(dir, "nutcracker.yml")
	if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
		tb.Fatal(err)
	}
	stats := FreePort(tb, "127.0.0.1")
	args := []string{"-c", conf, "-s", strconv.Itoa(stats), "-a", "127.0.0.1", "-o", filepath.Join(dir, "nutcracker.log")}
	if opt.StatsInterval > 0 {
		args = append(args, "-i", strconv.FormatInt(max(opt.StatsInterval.Milliseconds(), 1), 10))
	}
	s := &Server{Host: "127.0.0.1", Port: stats, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(stats)), name: bin, args: args, tb: tb}
	s.startNoWait()
	for _, a := range append(waitAddrs, s.Addr) {
		if err := WaitListening(a, 10*time.Second); err != nil {
			log, _ := os.ReadFile(filepath.Join(dir, "nutcracker.log"))
			tb.Fatalf("nutcracker: %v\n%s", err, log)
		}
	}
	return s
}

func (s *Server) start() {
	s.tb.Helper()
	s.startNoWait()
	if err := WaitListening(s.Addr, 10*time.Second); err != nil {
		s.tb.Fatalf("%s %v: %v", s.name, s.args, err)
	}
}

func (s *Server) startNoWait() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.Command(s.name, s.args...)
	// Server logs stay out of test output; a server that fails to start
	// is reported by the wait that follows.
	cmd.Stdout = nil
	cmd.Stderr = nil
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("start %s: %v", s.name, err)
	}
	s.Cmd = cmd
	done := make(chan struct{})
	s.done = done
	go func() { cmd.Wait(); close(done) }()
	s.tb.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
}

// Kill stops the server with SIGKILL and waits until its port is closed.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Cmd != nil && s.Cmd.Process != nil {
		if resumeSignal != nil {
			s.Cmd.Process.Signal(resumeSignal) // a paused server dies too
		}
		s.Cmd.Process.Kill()
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
		}
	}
}

// Stop pauses the server with SIGSTOP: it keeps its sockets but answers nothing.
func (s *Server) Stop() { s.signal(pauseSignal) }

// Continue resumes a server paused with Stop.
func (s *Server) Continue() { s.signal(resumeSignal) }

func (s *Server) signal(sig os.Signal) {
	if sig == nil {
		s.tb.Skip("this system cannot pause a process")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Cmd != nil && s.Cmd.Process != nil {
		s.Cmd.Process.Signal(sig)
	}
}

// Restart kills the server and starts it again on the same address.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Kill()
	s.start()
}

// RestartWith kills the server and starts it again on the same address,
// each of extra's options ("--name" and its values) in place of the one of
// the same name it was started with. It waits only until the port accepts
// connections: a redis-server loading its dataset answers -LOADING then.
func (s *Server) RestartWith(extra ...string) {
	s.tb.Helper()
	s.Kill()
	s.mu.Lock()
	s.args = setOptions(s.args, extra)
	s.mu.Unlock()
	s.start()
}

// WaitListening waits until addr accepts TCP connections.
func WaitListening(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if listening(addr) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("%s not listening after %v", addr, d)
}

func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Do sends one command to a Redis server in RESP and returns the first line
// of its reply (or the bulk payload for a bulk reply). It is a small helper
// for checks that should not depend on the code under test.
func Do(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "$") {
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return "(nil)", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return line, nil
}

// NutcrackerAccepts reports whether nutcracker -t (the binary bin) accepts
// the configuration file at path. Its resolver may wait for DNS timeouts
// without a network, hence the long limit.
func NutcrackerAccepts(tb testing.TB, bin, path string) bool {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-t", "-c", path).CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil && strings.Contains(string(out), "syntax is ok"):
		return true
	case errors.As(err, &exit) && strings.Contains(string(out), "syntax is invalid"):
		return false
	}
	tb.Fatalf("nutcracker -t: %v\n%s", err, out)
	return false
}
