package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/proxy"
)

// redisPool describes one redis pool of a test configuration; the same
// value renders the YAML for the proxy and for nutcracker.
type redisPool struct {
	hash, distribution, hashTag string
	serverConnections           int
	auth                        string
	db                          int
	servers                     []string // "host:port:weight [name]"
}

// yaml renders the pool as a nutcracker configuration file.
func (rp redisPool) yaml(name, listen string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:\n  listen: %s\n  redis: true\n", name, listen)
	if rp.hash != "" {
		fmt.Fprintf(&b, "  hash: %s\n", rp.hash)
	}
	if rp.distribution != "" {
		fmt.Fprintf(&b, "  distribution: %s\n", rp.distribution)
	}
	if rp.hashTag != "" {
		fmt.Fprintf(&b, "  hash_tag: %q\n", rp.hashTag)
	}
	if rp.serverConnections > 0 {
		fmt.Fprintf(&b, "  server_connections: %d\n", rp.serverConnections)
	}
	if rp.auth != "" {
		fmt.Fprintf(&b, "  redis_auth: %s\n", rp.auth)
	}
	if rp.db != 0 {
		fmt.Fprintf(&b, "  redis_db: %d\n", rp.db)
	}
	b.WriteString("  servers:\n")
	for _, s := range rp.servers {
		fmt.Fprintf(&b, "    - %s\n", s)
	}
	return b.String()
}

// startRedisBackends starts n redis-server processes with extra arguments.
func startRedisBackends(t *testing.T, n int, extra ...string) []*testservers.Server {
	t.Helper()
	out := make([]*testservers.Server, n)
	for i := range out {
		out[i] = testservers.Redis(t, extra...)
	}
	return out
}

// serverLines makes "addr:weight [name]" lines; weights and names may be
// nil (weight 1, no name).
func serverLines(backends []*testservers.Server, weights []int, names []string) []string {
	lines := make([]string, len(backends))
	for i, s := range backends {
		w := 1
		if weights != nil {
			w = weights[i]
		}
		lines[i] = fmt.Sprintf("%s:%d", s.Addr, w)
		if names != nil {
			lines[i] += " " + names[i]
		}
	}
	return lines
}

// freeListen returns a free loopback listen address.
func freeListen(t *testing.T) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(testservers.FreePort(t, "127.0.0.1")))
}

// startProxy parses yaml, starts the proxy in-process and returns it. The
// cleanup closes it and checks that every goroutine started since the call
// has ended: start every other server before calling it.
func startProxy(t *testing.T, yaml string) *proxy.Proxy {
	t.Helper()
	return startProxyOpts(t, yaml, proxy.Options{})
}

// startProxyOpts is startProxy with options (a stats address, say).
func startProxyOpts(t *testing.T, yaml string, opt proxy.Options) *proxy.Proxy {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	baseline := runtime.NumGoroutine()
	px, err := proxy.New(cfg, opt)
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
		checkGoroutines(t, baseline)
	})
	return px
}

// checkGoroutines waits up to 2 s for the goroutine count to fall back to
// baseline, and fails with the leftover stacks if it does not.
func checkGoroutines(t *testing.T, baseline int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= baseline {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("%d goroutines after Close, %d before the proxy started:\n%s", n, baseline, buf)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// redisFixture is a proxy in front of real redis servers, and a client.
type redisFixture struct {
	backends []*testservers.Server
	px       *proxy.Proxy
	addr     string
	client   *redis.Client
}

// newRedisFixture starts n backends and a proxy pool over them described by
// rp (its servers are filled in when empty).
func newRedisFixture(t *testing.T, n int, rp redisPool) *redisFixture {
	t.Helper()
	f := &redisFixture{backends: startRedisBackends(t, n)}
	if rp.servers == nil {
		rp.servers = serverLines(f.backends, nil, nil)
	}
	f.px = startProxy(t, rp.yaml("test", freeListen(t)))
	f.addr = f.px.Addr(0).String()
	f.client = newGoRedis(t, f.addr)
	return f
}

// newGoRedis returns a RESP2 go-redis client closed by the test's cleanup.
func newGoRedis(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true,
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second})
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING through %s: %v", addr, err)
	}
	return c
}

// respConn is a raw RESP connection for checks where the exact bytes
// matter.
type respConn struct {
	tb testing.TB
	nc net.Conn
	r  *bufio.Reader
}

// dialTest connects to addr; the connection closes with the test.
func dialTest(tb testing.TB, addr string) net.Conn {
	tb.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		tb.Fatalf("dial %s: %v", addr, err)
	}
	tb.Cleanup(func() { nc.Close() })
	return nc
}

// dialRESP connects to addr; the connection closes with the test.
func dialRESP(tb testing.TB, addr string) *respConn {
	tb.Helper()
	nc := dialTest(tb, addr)
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	return &respConn{tb: tb, nc: nc, r: bufio.NewReader(nc)}
}

// encodeCommand returns args as a RESP multibulk request.
func encodeCommand(dst []byte, args ...string) []byte {
	dst = fmt.Appendf(dst, "*%d\r\n", len(args))
	for _, a := range args {
		dst = fmt.Appendf(dst, "$%d\r\n%s\r\n", len(a), a)
	}
	return dst
}

// write sends raw bytes.
func (rc *respConn) write(b []byte) {
	rc.tb.Helper()
	if _, err := rc.nc.Write(b); err != nil {
		rc.tb.Fatalf("write: %v", err)
	}
}

// read returns the next reply's exact bytes.
func (rc *respConn) read() string {
	rc.tb.Helper()
	s, err := readReply(rc.r)
	if err != nil {
		rc.tb.Fatalf("read reply: %v", err)
	}
	return s
}

// do sends one command and returns its reply's bytes.
func (rc *respConn) do(args ...string) string {
	rc.tb.Helper()
	rc.write(encodeCommand(nil, args...))
	return rc.read()
}

// expectClosed checks that the peer closes the connection without sending
// anything more.
func (rc *respConn) expectClosed() {
	rc.tb.Helper()
	rc.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := rc.r.ReadByte()
	if err == nil {
		rest, _ := rc.r.Peek(rc.r.Buffered())
		rc.tb.Fatalf("connection still open: read %q", append([]byte{b}, rest...))
	}
	if err != io.EOF && !isReset(err) {
		rc.tb.Fatalf("want the connection closed, got %v", err)
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// readReply reads one RESP2 reply and returns its exact bytes.
func readReply(r *bufio.Reader) (string, error) {
	var b bytes.Buffer
	if err := readReplyInto(r, &b, 0); err != nil {
		return b.String(), err
	}
	return b.String(), nil
}

func readReplyInto(r *bufio.Reader, b *bytes.Buffer, depth int) error {
	line, err := r.ReadString('\n')
	b.WriteString(line)
	if err != nil {
		return err
	}
	if len(line) < 3 || !strings.HasSuffix(line, "\r\n") || depth > 16 {
		return fmt.Errorf("bad reply line %q", line)
	}
	switch line[0] {
	case '+', '-', ':':
		return nil
	case '$', '*':
		n, err := strconv.Atoi(line[1 : len(line)-2])
		if err != nil {
			return fmt.Errorf("bad length in %q", line)
		}
		if line[0] == '$' {
			if n < 0 {
				return nil
			}
			_, err := io.CopyN(b, r, int64(n)+2)
			return err
		}
		for i := 0; i < n; i++ {
			if err := readReplyInto(r, b, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown reply type in %q", line)
}

// bulk is the RESP encoding of a bulk string.
func bulk(s string) string { return fmt.Sprintf("$%d\r\n%s\r\n", len(s), s) }

// array is the RESP encoding of an array of already encoded elements.
func array(elems ...string) string {
	return fmt.Sprintf("*%d\r\n", len(elems)) + strings.Join(elems, "")
}

// nilBulk is the RESP2 null bulk string.
const nilBulk = "$-1\r\n"

// backendDo runs commands on one connection straight to a backend (for
// AUTH and SELECT before a check) and returns the last reply.
func backendDo(t *testing.T, addr string, cmds ...[]string) string {
	t.Helper()
	rc := dialRESP(t, addr)
	defer rc.nc.Close()
	var last string
	for _, c := range cmds {
		last = rc.do(c...)
	}
	return last
}

// dbsize returns the number of keys in db 0 of a backend.
func dbsize(t *testing.T, addr string) int {
	t.Helper()
	s, err := testservers.Do(addr, "DBSIZE")
	if err != nil {
		t.Fatalf("DBSIZE %s: %v", addr, err)
	}
	n, err := strconv.Atoi(strings.TrimPrefix(s, ":"))
	if err != nil {
		t.Fatalf("DBSIZE %s: %q", addr, s)
	}
	return n
}
