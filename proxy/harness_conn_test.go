package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// clientConn is a raw client connection, in either protocol, for checks
// where the exact bytes matter. Its methods that take no deadline use the
// one set when it was dialled; those named try return their errors, for
// goroutines other than the test's.
type clientConn struct {
	tb testing.TB
	nc net.Conn
	r  *bufio.Reader
}

// newClientConn wraps a connection made elsewhere (TLS, unix).
func newClientConn(tb testing.TB, nc net.Conn) *clientConn {
	return &clientConn{tb: tb, nc: nc, r: bufio.NewReaderSize(nc, 64<<10)}
}

// dialConn connects to addr; the connection closes with the test.
func dialConn(tb testing.TB, addr string) net.Conn {
	tb.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		tb.Fatalf("dial %s: %v", addr, err)
	}
	tb.Cleanup(func() { nc.Close() })
	return nc
}

// dialClient connects to addr with a 30 s deadline; the connection closes
// with the test.
func dialClient(tb testing.TB, addr string) *clientConn {
	tb.Helper()
	nc := dialConn(tb, addr)
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	return newClientConn(tb, nc)
}

// tryDialClient connects to addr without a deadline; the caller closes
// the connection.
func tryDialClient(tb testing.TB, addr string) (*clientConn, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return newClientConn(tb, nc), nil
}

// write sends raw bytes.
func (c *clientConn) write(b []byte) {
	c.tb.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.tb.Fatalf("write: %v", err)
	}
}

// expectClosed checks that the peer closes the connection without sending
// anything more.
func (c *clientConn) expectClosed() {
	c.tb.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := c.r.ReadByte()
	if err == nil {
		rest, _ := c.r.Peek(c.r.Buffered())
		c.tb.Fatalf("connection still open: read %q", append([]byte{b}, rest...))
	}
	if err != io.EOF && !isReset(err) {
		c.tb.Fatalf("want the connection closed, got %v", err)
	}
}

// anyVersion, as a line of an expected reply, stands for any memcache
// VERSION line: the proxy and memcached name different versions.
const anyVersion = "VERSION x\r\n"

// readN reads exactly n bytes within d; it returns what came and why it
// stopped early.
func (c *clientConn) readN(n int, d time.Duration) (string, error) {
	c.nc.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, n)
	m, err := io.ReadFull(c.r, buf)
	return string(buf[:m]), err
}

// readLike reads within d as many bytes as want has, except that each
// anyVersion line of want takes one whole line, returned as anyVersion if
// it is a VERSION line.
func (c *clientConn) readLike(want string, d time.Duration) (string, error) {
	deadline := time.Now().Add(d)
	c.nc.SetReadDeadline(deadline)
	var got strings.Builder
	for want != "" {
		n := strings.Index(want, anyVersion)
		if n == 0 {
			line, err := c.r.ReadString('\n')
			got.WriteString(normalizeMemcache(line))
			if err != nil {
				return got.String(), err
			}
			want = want[len(anyVersion):]
			continue
		}
		if n < 0 {
			n = len(want)
		}
		s, err := c.readN(n, time.Until(deadline))
		got.WriteString(s)
		if err != nil {
			return got.String(), err
		}
		want = want[n:]
	}
	return got.String(), nil
}

// readToEOF reads until the peer closes, within d, with VERSION lines
// normalised. A reset counts as a close.
func (c *clientConn) readToEOF(d time.Duration) (string, error) {
	c.nc.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(c.r)
	if err != nil && isReset(err) {
		err = nil
	}
	return normalizeMemcache(string(b)), err
}

// exchange sends request and expects exactly want back (see readLike).
func (c *clientConn) exchange(request, want string) error {
	got, err := c.tryExchange(request, want)
	if got != want {
		return fmt.Errorf("%q: got %q (%v), want %q", short(request), short(got), err, short(want))
	}
	return nil
}

// tryExchange sends request and reads a reply as long as want.
func (c *clientConn) tryExchange(request, want string) (string, error) {
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Write([]byte(request)); err != nil {
		return "", fmt.Errorf("write %q: %w", short(request), err)
	}
	return c.readLike(want, 5*time.Second)
}

// isReset reports whether err is the peer resetting the connection.
func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

// short clips long strings in messages.
func short(s string) string {
	if len(s) > 120 {
		return fmt.Sprintf("%s...(%d bytes)", s[:120], len(s))
	}
	return s
}
