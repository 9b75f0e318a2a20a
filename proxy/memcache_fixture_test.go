package proxy_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/proxy"
)

// mcPool describes one memcache pool of a test configuration; the same value
// renders the YAML for the proxy and for nutcracker.
type mcPool struct {
	hash, distribution string
	servers            []string // "host:port:weight [name]"
}

// yaml renders the pool as a nutcracker configuration file.
func (mp mcPool) yaml(name, listen string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:\n  listen: %s\n  redis: false\n", name, listen)
	if mp.hash != "" {
		fmt.Fprintf(&b, "  hash: %s\n", mp.hash)
	}
	if mp.distribution != "" {
		fmt.Fprintf(&b, "  distribution: %s\n", mp.distribution)
	}
	b.WriteString("  servers:\n")
	for _, s := range mp.servers {
		fmt.Fprintf(&b, "    - %s\n", s)
	}
	return b.String()
}

// mcServerLines makes "addr:weight" lines; weights may be nil (weight 1).
func mcServerLines(backends []*testservers.Server, weights []int) []string {
	lines := make([]string, len(backends))
	for i, s := range backends {
		w := 1
		if weights != nil {
			w = weights[i]
		}
		lines[i] = fmt.Sprintf("%s:%d", s.Addr, w)
	}
	return lines
}

// mcListen returns a free loopback listen address.
func mcListen(t *testing.T) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(testservers.FreePort(t, "127.0.0.1")))
}

// mcStartProxy parses yaml, starts the proxy in-process and returns the
// address of its first pool. The cleanup closes the proxy and checks that
// no goroutine it started outlives it: start every server before calling it.
func mcStartProxy(t *testing.T, yaml string) string {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	baseline := runtime.NumGoroutine()
	px, err := proxy.New(cfg, proxy.Options{})
	if err != nil {
		t.Fatalf("proxy.New: %v", err)
	}
	if err := px.Start(); err != nil {
		t.Fatalf("proxy.Start: %v", err)
	}
	t.Cleanup(func() {
		if err := px.Close(); err != nil {
			t.Errorf("proxy.Close: %v", err)
		}
		mcCheckGoroutines(t, baseline)
	})
	return px.Addr(0).String()
}

// mcCheckGoroutines waits up to 2 s for the goroutine count to fall back to
// baseline, and fails with the leftover stacks if it does not.
func mcCheckGoroutines(t *testing.T, baseline int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("%d goroutines after Close, %d before the proxy started:\n%s", runtime.NumGoroutine(), baseline, buf)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mcFixture is a proxy in front of real memcached servers, and one more
// memcached to compare with.
type mcFixture struct {
	backends []*testservers.Server
	direct   *testservers.Server
	addr     string // the proxy's listen address
}

// newMcFixture starts n backends behind a ketama/md5 proxy pool and one
// direct memcached. extra are further memcached arguments for all of them.
// md5, not fnv1a_64: nutcracker's fnv1a_64 is 32-bit with a small prime, so
// keys that differ only in their last bytes ("multi:1", "multi:2") hash to
// nearby points and can miss some servers altogether.
func newMcFixture(t *testing.T, n int, extra ...string) *mcFixture {
	t.Helper()
	f := &mcFixture{direct: testservers.Memcached(t, extra...)}
	for range n {
		f.backends = append(f.backends, testservers.Memcached(t, extra...))
	}
	mp := mcPool{hash: "md5", distribution: "ketama", servers: mcServerLines(f.backends, nil)}
	f.addr = mcStartProxy(t, mp.yaml("mc", mcListen(t)))
	return f
}

// holders returns the indexes of the backends that hold key.
func (f *mcFixture) holders(t *testing.T, key string) []int {
	t.Helper()
	var in []int
	for i, b := range f.backends {
		c := mcDial(t, b.Addr)
		if c.roundTrip("get "+key+"\r\n") != "END\r\n" {
			in = append(in, i)
		}
		c.nc.Close()
	}
	return in
}

// mcConn is a raw memcache text-protocol connection for checks where the
// exact bytes matter.
type mcConn struct {
	tb testing.TB
	nc net.Conn
	r  *bufio.Reader
}

// mcDial connects to addr; the connection closes with the test.
func mcDial(tb testing.TB, addr string) *mcConn {
	tb.Helper()
	nc := dialTest(tb, addr)
	return &mcConn{tb: tb, nc: nc, r: bufio.NewReaderSize(nc, 64<<10)}
}

// write sends raw bytes from a goroutine, so that a large request and its
// replies cannot deadlock on full socket buffers; the returned channel
// yields the write's error.
func (c *mcConn) write(s string) <-chan error {
	done := make(chan error, 1)
	go func() {
		c.nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		_, err := io.WriteString(c.nc, s)
		done <- err
	}()
	return done
}

// mcSentinel ends a pipeline: memcached and the proxy both answer "mn" with
// "MN".
const mcSentinel = "mn\r\n"

// roundTrip sends req followed by "mn" and returns every byte answered
// before that "MN" (req may hold "mn" requests of its own, but no value that
// contains "mn\r\n"), with VERSION lines and cas uniques normalised.
func (c *mcConn) roundTrip(req string) string {
	c.tb.Helper()
	s, err := c.tryRoundTrip(req)
	if err != nil {
		c.tb.Fatal(err)
	}
	return s
}

// tryRoundTrip is roundTrip returning its error, for use off the test's
// goroutine.
func (c *mcConn) tryRoundTrip(req string) (string, error) {
	werr := c.write(req + mcSentinel)
	c.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	var b strings.Builder
	for left := strings.Count(req, mcSentinel) + 1; left > 0; {
		line, err := c.r.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return "", fmt.Errorf("%s: reading replies to %.200q: %w; got %.500q", c.nc.RemoteAddr(), req, err, b.String())
		}
		if line == "MN\r\n" {
			left--
		}
	}
	if err := <-werr; err != nil {
		return "", fmt.Errorf("%s: write: %w", c.nc.RemoteAddr(), err)
	}
	return mcNormalize(strings.TrimSuffix(b.String(), "MN\r\n")), nil
}

// readQuiet reads until the peer closes the connection, has been silent for
// quiet, or has answered a VERSION line (every exchange that uses it ends
// with "version"), and then for a short while more to catch stray bytes. It
// reports what arrived and whether the connection closed.
func (c *mcConn) readQuiet(quiet time.Duration) (string, bool) {
	var b strings.Builder
	buf := make([]byte, 64<<10)
	wait := quiet
	for {
		c.nc.SetReadDeadline(time.Now().Add(wait))
		n, err := c.r.Read(buf)
		b.Write(buf[:n])
		var ne net.Error
		switch {
		case err == nil:
			if mcEndsInVersion.MatchString(b.String()) {
				wait = 50 * time.Millisecond
			}
		case errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded):
			return mcNormalize(b.String()), false
		default:
			return mcNormalize(b.String()), true
		}
	}
}

var (
	mcEndsInVersion = regexp.MustCompile(`(^|\n)VERSION [^\r\n]*\r\n$`)
	mcVersionLine   = regexp.MustCompile(`(?m)^VERSION [^\r\n]*\r$`)
	mcCasField      = regexp.MustCompile(`(?m)^(VALUE \S+ \d+ \d+) \d+\r$`)
)

// mcNormalize hides what legitimately differs between two memcached
// servers: the VERSION text and the cas unique of gets and gats.
func mcNormalize(s string) string {
	s = mcVersionLine.ReplaceAllString(s, "VERSION x\r")
	return mcCasField.ReplaceAllString(s, "$1 CAS\r")
}

// mcKeys returns n distinct keys with prefix.
func mcKeys(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s:%d", prefix, i)
	}
	return keys
}
