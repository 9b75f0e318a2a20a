//go:build linux

package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// idleResult is the resident memory (KB) of a proxy before it holds conns
// client connections, once they are connected, after each sent one PING (32
// in flight at a time), and after each sent one more PING all at once.
type idleResult struct {
	conns                          int
	before, connected, ping, burst int64
}

func (r idleResult) perConn(kb int64) float64 { return float64(kb-r.before) / float64(r.conns) }

// sourceAddrs returns the local addresses to spread n connections over: nil
// (let the kernel choose) when the ephemeral port range is ample, else
// 127.0.0.2, 127.0.0.3 ... with about half the range used on each.
func sourceAddrs(n, portRange int) []*net.TCPAddr {
	per := portRange / 2
	if per <= 0 || n <= per {
		return nil
	}
	k := min((n+per-1)/per, 250)
	addrs := make([]*net.TCPAddr, k)
	for i := range addrs {
		addrs[i] = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i))}
	}
	return addrs
}

// ephemeralPorts returns the size of the kernel's ephemeral port range.
func ephemeralPorts() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || hi < lo {
		return 0
	}
	return hi - lo + 1
}

// openIdle opens n connections to addr with a few dozen dialers.
func openIdle(ctx context.Context, addr string, n int) ([]net.Conn, error) {
	srcs := sourceAddrs(n, ephemeralPorts())
	conns := make([]net.Conn, n)
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			d := net.Dialer{Timeout: 10 * time.Second}
			for i := range next {
				if len(srcs) > 0 {
					d.LocalAddr = srcs[i%len(srcs)]
				}
				conns[i], errs[i] = d.DialContext(ctx, "tcp", addr)
			}
		})
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(ctx.Err(), firstError("dial", errs)); err != nil {
		closeAll(conns)
		return nil, err
	}
	return conns, nil
}

// pingEach sends one PING on every connection and reads its +PONG, with at
// most 32 requests in flight at a time.
func pingEach(conns []net.Conn) error {
	errs := make([]error, len(conns))
	next := make(chan int)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			buf := make([]byte, 7)
			for i := range next {
				errs[i] = ping(conns[i], buf)
			}
		})
	}
	for i := range conns {
		next <- i
	}
	close(next)
	wg.Wait()
	return firstError("ping", errs)
}

// pingBurst pauses the proxy (SIGSTOP), sends PING on every connection,
// resumes it and reads every +PONG: the proxy wakes up with all requests
// pending at once, which shows how much memory a burst leaves behind.
func pingBurst(conns []net.Conn, pid int) error {
	errs := make([]error, len(conns))
	deadline := time.Now().Add(30 * time.Second)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return fmt.Errorf("pause proxy: %w", err)
	}
	for i, c := range conns {
		_ = c.SetDeadline(deadline)
		_, errs[i] = io.WriteString(c, pingRequest)
	}
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		return fmt.Errorf("resume proxy: %w", err)
	}
	buf := make([]byte, 7)
	for i, c := range conns {
		if errs[i] == nil {
			errs[i] = readPong(c, buf)
		}
	}
	return firstError("ping burst", errs)
}

const pingRequest = "*1\r\n$4\r\nPING\r\n"

func ping(c net.Conn, buf []byte) error {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, pingRequest); err != nil {
		return err
	}
	return readPong(c, buf)
}

func readPong(c net.Conn, buf []byte) error {
	defer c.SetDeadline(time.Time{})
	if _, err := io.ReadFull(c, buf[:7]); err != nil {
		return err
	}
	if string(buf[:7]) != "+PONG\r\n" {
		return fmt.Errorf("reply %q, want +PONG", buf[:7])
	}
	return nil
}

// firstError summarises per-connection errors.
func firstError(op string, errs []error) error {
	count := 0
	var first error
	for _, e := range errs {
		if e != nil {
			count++
			first = cmp.Or(first, e)
		}
	}
	if first == nil {
		return nil
	}
	return fmt.Errorf("%s: %d of %d connections failed, first: %w", op, count, len(errs), first)
}

// closeAll closes the connections with a reset (SO_LINGER 0), so that
// 10,000 closes leave no TIME_WAIT sockets to slow the next round of dials.
func closeAll(conns []net.Conn) {
	for _, c := range conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		if c != nil {
			_ = c.Close()
		}
	}
}

// settledRSS waits for the proxy to finish its work, then reads its RSS.
func settledRSS(pid int, settle time.Duration) (int64, error) {
	time.Sleep(settle)
	return rssOf(pid)
}

// measureIdle records the RSS of pid in the phases of idleResult.
func measureIdle(ctx context.Context, addr string, pid, n int, settle time.Duration) (idleResult, error) {
	r := idleResult{conns: n}
	var err error
	if r.before, err = rssOf(pid); err != nil {
		return r, err
	}
	conns, err := openIdle(ctx, addr, n)
	if err != nil {
		return r, err
	}
	defer closeAll(conns)
	if r.connected, err = settledRSS(pid, settle); err != nil {
		return r, err
	}
	if err := pingEach(conns); err != nil {
		return r, err
	}
	if r.ping, err = settledRSS(pid, settle); err != nil {
		return r, err
	}
	if err := pingBurst(conns, pid); err != nil {
		return r, err
	}
	r.burst, err = settledRSS(pid, settle)
	return r, err
}

var idleHeader = []string{"target", "connections", "RSS before KB", "RSS connected KB", "RSS after PING KB",
	"RSS after burst KB", "KB/conn connected", "KB/conn after PING", "KB/conn after burst"}

// idleSection measures nutcracker, then shardproxy.
func (b *bench) idleSection(title string) (string, error) {
	var res [numTargets]idleResult
	var lines [][]string
	for _, t := range []target{nutcracker, shardproxy} {
		start := time.Now()
		r, err := measureIdle(b.ctx, b.cl.redis[t], b.cl.pid[t], b.o.conns, b.o.settle)
		if err != nil {
			err = fmt.Errorf("idle connections to %s: %w", targetNames[t], err)
			b.failures = append(b.failures, err.Error())
			return markdown(title, idleHeader, lines), err
		}
		res[t] = r
		b.progress("idle %s: %d conns, RSS %d -> %d -> %d -> %d KB in %v", targetNames[t], r.conns,
			r.before, r.connected, r.ping, r.burst, time.Since(start).Round(time.Millisecond))
		lines = append(lines, []string{targetNames[t], strconv.Itoa(r.conns), kb(r.before), kb(r.connected),
			kb(r.ping), kb(r.burst), perConn(r, r.connected), perConn(r, r.ping), perConn(r, r.burst)})
		time.Sleep(b.o.settle) // let the proxy notice the closed connections
	}
	b.results.idle = &res
	text := markdown(title, idleHeader, lines)
	n, s := res[nutcracker], res[shardproxy]
	text += fmt.Sprintf("KB per connection, shardproxy/nutcracker: connected %s, after PING %s, after burst %s\n\n",
		perConnRatio(s.perConn(s.connected), n.perConn(n.connected)),
		perConnRatio(s.perConn(s.ping), n.perConn(n.ping)),
		perConnRatio(s.perConn(s.burst), n.perConn(n.burst)))
	return text, nil
}

func perConn(r idleResult, kb int64) string { return fmt.Sprintf("%.2f", r.perConn(kb)) }

func perConnRatio(s, n float64) string { return ratio(s, n, n > 0) }

func kb(v int64) string { return strconv.FormatInt(v, 10) }
