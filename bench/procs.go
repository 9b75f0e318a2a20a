//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shardproxy/shardproxy/internal/freeport"
)

// procs owns every long-running child process the bench starts (backends and
// proxies) and a scratch directory for their configs and logs.
type procs struct {
	dir   string
	cmds  []*exec.Cmd
	ports map[int]bool
}

func newProcs() (*procs, error) {
	dir, err := os.MkdirTemp("", "shardproxy-bench-")
	if err != nil {
		return nil, fmt.Errorf("scratch dir: %w", err)
	}
	return &procs{dir: dir, ports: map[int]bool{}}, nil
}

// start launches a child that dies with the bench (SIGKILL on parent death)
// and is killed by stopAll. Its output goes to logName in the scratch dir.
func (p *procs) start(logName, bin string, args ...string) (*exec.Cmd, error) {
	log, err := os.Create(filepath.Join(p.dir, logName))
	if err != nil {
		return nil, fmt.Errorf("log for %s: %w", bin, err)
	}
	defer log.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p.cmds = append(p.cmds, cmd)
	return cmd, nil
}

// stopAll kills every child, waits for it, and removes the scratch dir.
func (p *procs) stopAll() {
	p.stopSince(0)
	_ = os.RemoveAll(p.dir)
}

// mark returns how many children were started so far: stopSince(mark)
// stops those started after it, a section's own servers and proxies.
func (p *procs) mark() int { return len(p.cmds) }

// stopSince kills the children started after mark m, the latest first (a
// section's proxies before their servers), and waits for them; the others
// run on.
func (p *procs) stopSince(m int) {
	m = min(max(m, 0), len(p.cmds))
	for i := len(p.cmds) - 1; i >= m; i-- {
		_ = p.cmds[i].Process.Kill()
		_ = p.cmds[i].Wait()
	}
	p.cmds = p.cmds[:m]
}

// freePort returns a loopback TCP port that was free a moment ago and that
// this run has not handed out before.
func (p *procs) freePort() (int, error) {
	port, err := freeport.Pick("127.0.0.1", func(port int) bool { return p.ports[port] })
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	p.ports[port] = true
	return port, nil
}

// waitListening waits until addr accepts TCP connections, failing early if
// cmd has exited.
func waitListening(cmd *exec.Cmd, addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return nil
		}
		if !alive(cmd.Process.Pid) {
			return fmt.Errorf("%s exited before listening on %s", cmd.Path, addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s not listening on %s after %v", cmd.Path, addr, d)
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f, err := statFields(b)
	return err == nil && f[0] != "Z" && f[0] != "X"
}

// statFields returns the fields of a /proc/PID/stat line after the command
// name, so field 3 of proc(5) (state) is index 0 and utime (14) is index 11.
func statFields(b []byte) ([]string, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, errors.New("proc stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return nil, fmt.Errorf("proc stat: %d fields", len(f))
	}
	return f, nil
}

// cpuTicks parses utime+stime (clock ticks, all threads) from a
// /proc/PID/stat line.
func cpuTicks(b []byte) (int64, error) {
	f, err := statFields(b)
	if err != nil {
		return 0, err
	}
	u, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("proc stat utime: %w", err)
	}
	s, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("proc stat stime: %w", err)
	}
	return u + s, nil
}

// cpuOf returns the CPU time (user+system) pid has used so far.
func cpuOf(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu of %d: %w", pid, err)
	}
	t, err := cpuTicks(b)
	if err != nil {
		return 0, fmt.Errorf("cpu of %d: %w", pid, err)
	}
	return time.Duration(t) * time.Second / time.Duration(clockTicks()), nil
}

// clockTicks returns USER_HZ, the unit of /proc stat times, from the
// auxiliary vector (AT_CLKTCK); 100 if it cannot be read.
func clockTicks() int64 {
	const atClkTck = 17
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	for ; len(b) >= 16; b = b[16:] {
		if binary.NativeEndian.Uint64(b) == atClkTck {
			if v := int64(binary.NativeEndian.Uint64(b[8:])); v > 0 {
				return v
			}
		}
	}
	return 100
}

// statusKB parses a field given in KB (VmRSS, RssAnon) from a
// /proc/PID/status file.
func statusKB(b []byte, field string) (int64, error) {
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("proc status: odd %s line %q", field, line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("proc status %s: %w", field, err)
		}
		return kb, nil
	}
	return 0, fmt.Errorf("proc status: no %s line", field)
}

// rssOf returns the resident set size of pid in KB.
func rssOf(pid int) (int64, error) {
	rss, _, err := memoryOf(pid)
	return rss, err
}

// memoryOf returns the resident set size of pid and the anonymous part of
// it (its private memory: not the pages of its binary and libraries, which
// are page cache shared with every process mapping them), both in KB.
func memoryOf(pid int) (rss, anon int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("rss of %d: %w", pid, err)
	}
	if rss, err = statusKB(b, "VmRSS"); err != nil {
		return 0, 0, err
	}
	if anon, err = statusKB(b, "RssAnon"); err != nil {
		return 0, 0, err
	}
	return rss, anon, nil
}

// raiseNoFile raises the soft RLIMIT_NOFILE to at least want (capped at the
// hard limit). Calling Setrlimit explicitly also makes children inherit the
// raised limit instead of the one the Go runtime saved at start-up.
func raiseNoFile(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	lim.Cur = max(lim.Cur, min(want, lim.Max))
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("setrlimit: %w", err)
	}
	return lim.Cur, nil
}

// buildProxy compiles ./cmd/shardproxy of the enclosing module into dir.
func buildProxy(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	mod := strings.TrimSpace(string(out))
	if err != nil || mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("build shardproxy: run from inside the module or pass -proxy-bin (go env GOMOD: %v)", err)
	}
	bin := filepath.Join(dir, "shardproxy")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/shardproxy")
	cmd.Dir = filepath.Dir(mod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build shardproxy (or pass -proxy-bin): %w\n%s", err, out)
	}
	return bin, nil
}

// lookPath finds a program on PATH or, failing that, in the sbin
// directories, where Debian installs nutcracker.
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if !strings.Contains(name, "/") {
		for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
			p := filepath.Join(dir, name)
			if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("%s not found on PATH or in sbin", name)
}
