package proxytest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// Conn is a raw client connection, in either protocol, for checks
// where the exact bytes matter. Its methods that take no deadline use the
// one set when it was dialled; those named try return their errors, for
// goroutines other than the test's.
type Conn struct {
	tb  testing.TB
	Net net.Conn
	R   *bufio.Reader
}

// NewConn wraps a connection made elsewhere (TLS, unix).
func NewConn(tb testing.TB, nc net.Conn) *Conn {
	return &Conn{tb: tb, Net: nc, R: bufio.NewReaderSize(nc, 64<<10)}
}

// DialNet connects to addr; the connection closes with the test.
func DialNet(tb testing.TB, addr string) net.Conn {
	tb.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		tb.Fatalf("dial %s: %v", addr, err)
	}
	tb.Cleanup(func() { nc.Close() })
	return nc
}

// Dial connects to addr with a 30 s deadline; the connection closes
// with the test.
func Dial(tb testing.TB, addr string) *Conn {
	tb.Helper()
	nc := DialNet(tb, addr)
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	return NewConn(tb, nc)
}

// TryDial connects to addr without a deadline; the caller closes
// the connection.
func TryDial(tb testing.TB, addr string) (*Conn, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return NewConn(tb, nc), nil
}

// Write sends raw bytes.
func (c *Conn) Write(b []byte) {
	c.tb.Helper()
	if _, err := c.Net.Write(b); err != nil {
		c.tb.Fatalf("write: %v", err)
	}
}

// ExpectClosed checks that the peer closes the connection without sending
// anything more.
func (c *Conn) ExpectClosed() {
	c.tb.Helper()
	c.Net.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := c.R.ReadByte()
	if err == nil {
		rest, _ := c.R.Peek(c.R.Buffered())
		c.tb.Fatalf("connection still open: read %q", append([]byte{b}, rest...))
	}
	if err != io.EOF && !IsReset(err) {
		c.tb.Fatalf("want the connection closed, got %v", err)
	}
}

// AnyVersion, as a line of an expected reply, stands for any memcache
// VERSION line: the proxy and memcached name different versions.
const AnyVersion = "VERSION x\r\n"

// readN reads exactly n bytes within d; it returns what came and why it
// stopped early.
func (c *Conn) readN(n int, d time.Duration) (string, error) {
	c.Net.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, n)
	m, err := io.ReadFull(c.R, buf)
	return string(buf[:m]), err
}

// readLike reads within d as many bytes as want has, except that each
// anyVersion line of want takes one whole line, returned as anyVersion if
// it is a VERSION line.
func (c *Conn) readLike(want string, d time.Duration) (string, error) {
	deadline := time.Now().Add(d)
	c.Net.SetReadDeadline(deadline)
	var got strings.Builder
	for want != "" {
		n := strings.Index(want, AnyVersion)
		if n == 0 {
			line, err := c.R.ReadString('\n')
			got.WriteString(normalizeMemcache(line))
			if err != nil {
				return got.String(), err
			}
			want = want[len(AnyVersion):]
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

// ReadToEOF reads until the peer closes, within d, with VERSION lines
// normalised. A reset counts as a close.
func (c *Conn) ReadToEOF(d time.Duration) (string, error) {
	c.Net.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(c.R)
	if err != nil && IsReset(err) {
		err = nil
	}
	return normalizeMemcache(string(b)), err
}

// Exchange sends request and expects exactly want back (see readLike).
func (c *Conn) Exchange(request, want string) error {
	got, err := c.TryExchange(request, want)
	if got != want {
		return fmt.Errorf("%q: got %q (%v), want %q", Short(request), Short(got), err, Short(want))
	}
	return nil
}

// TryExchange sends request and reads a reply as long as want.
func (c *Conn) TryExchange(request, want string) (string, error) {
	c.Net.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Net.Write([]byte(request)); err != nil {
		return "", fmt.Errorf("write %q: %w", Short(request), err)
	}
	return c.readLike(want, 5*time.Second)
}

// IsReset reports whether err is the peer resetting the connection.
func IsReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

// Short clips long strings in messages.
func Short(s string) string {
	if len(s) > 120 {
		return fmt.Sprintf("%s...(%d bytes)", s[:120], len(s))
	}
	return s
}
