package proxy_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// encodeCommand appends args as a RESP multibulk request.
func encodeCommand(dst []byte, args ...string) []byte {
	dst = fmt.Appendf(dst, "*%d\r\n", len(args))
	for _, a := range args {
		dst = fmt.Appendf(dst, "$%d\r\n%s\r\n", len(a), a)
	}
	return dst
}

// bulk is the RESP encoding of a bulk string.
func bulk(s string) string { return fmt.Sprintf("$%d\r\n%s\r\n", len(s), s) }

// array is the RESP encoding of an array of already encoded elements.
func array(elems ...string) string {
	return fmt.Sprintf("*%d\r\n", len(elems)) + strings.Join(elems, "")
}

// nilBulk is the RESP2 null bulk string.
const nilBulk = "$-1\r\n"

// reply is one RESP2 reply: its exact bytes, and what they say.
type reply struct {
	raw   string  // the exact bytes (of a whole reply, not of an element)
	kind  byte    // '+', '-', ':', '$' or '*'
	str   string  // a simple string, error or bulk string
	null  bool    // a null bulk string or array
	num   int64   // an integer, or a bulk string's or array's length
	elems []reply // an array's elements
}

// String renders the reply for failure messages.
func (r reply) String() string {
	switch {
	case r.null:
		return "(nil)"
	case r.kind == '*':
		parts := make([]string, len(r.elems))
		for i, e := range r.elems {
			parts[i] = e.String()
		}
		return "[" + strings.Join(parts, " ") + "]"
	case r.kind == ':':
		return strconv.FormatInt(r.num, 10)
	}
	s := r.str
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return string(r.kind) + s
}

// readReply reads one RESP2 reply. On an error, raw holds what was read.
func readReply(r *bufio.Reader) (reply, error) {
	var b strings.Builder
	rep, err := readReplyInto(r, &b, 0)
	rep.raw = b.String()
	return rep, err
}

func readReplyInto(r *bufio.Reader, b *strings.Builder, depth int) (reply, error) {
	line, err := r.ReadString('\n')
	b.WriteString(line)
	if err != nil {
		return reply{}, err
	}
	if len(line) < 3 || !strings.HasSuffix(line, "\r\n") || depth > 16 {
		return reply{}, fmt.Errorf("bad reply line %q", line)
	}
	rep := reply{kind: line[0], str: line[1 : len(line)-2]}
	switch rep.kind {
	case '+', '-':
		return rep, nil
	case ':', '$', '*':
	default:
		return rep, fmt.Errorf("unknown reply type in %q", line)
	}
	n, err := strconv.ParseInt(rep.str, 10, 64)
	if err != nil {
		return rep, fmt.Errorf("bad number in %q", line)
	}
	rep.str, rep.num = "", n
	switch {
	case rep.kind == ':':
		return rep, nil
	case n < 0:
		rep.null = true
		return rep, nil
	case rep.kind == '$':
		if _, err := io.CopyN(b, r, n+2); err != nil {
			return rep, err
		}
		s := b.String()
		rep.str = s[len(s)-int(n)-2 : len(s)-2]
		return rep, nil
	}
	for i := int64(0); i < n; i++ {
		e, err := readReplyInto(r, b, depth+1)
		if err != nil {
			return rep, err
		}
		rep.elems = append(rep.elems, e)
	}
	return rep, nil
}

// read returns the next reply's exact bytes.
func (c *clientConn) read() string {
	c.tb.Helper()
	rep, err := readReply(c.r)
	if err != nil {
		c.tb.Fatalf("read reply: %v", err)
	}
	return rep.raw
}

// do sends one command and returns its reply's exact bytes.
func (c *clientConn) do(args ...string) string {
	c.tb.Helper()
	c.write(encodeCommand(nil, args...))
	return c.read()
}

// tryDo sends one command and reads its reply within d.
func (c *clientConn) tryDo(d time.Duration, args ...string) (reply, error) {
	c.nc.SetDeadline(time.Now().Add(d))
	if _, err := c.nc.Write(encodeCommand(nil, args...)); err != nil {
		return reply{}, err
	}
	return readReply(c.r)
}

// redisFixture is a proxy in front of real redis servers, and a go-redis
// client.
type redisFixture struct {
	*fixture
	client *redis.Client
}

// newRedisFixture starts n backends and a proxy pool over them described by
// p (its servers are filled in when empty).
func newRedisFixture(t *testing.T, n int, p pool) *redisFixture {
	t.Helper()
	f := &redisFixture{fixture: startFixture(t, p, startRedisBackends(t, n))}
	f.client = newGoRedis(t, f.addr)
	return f
}

// newGoRedis returns a RESP2 go-redis client closed by the test's cleanup,
// once it has answered PING.
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

// noRetryClient returns a RESP2 go-redis client that never retries, so
// every error the proxy answers is seen; it speaks TLS with tc when tc is
// not nil, and poolSize 0 is go-redis's default.
func noRetryClient(t *testing.T, addr string, tc *tls.Config, poolSize int) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1,
		TLSConfig: tc, PoolSize: poolSize, DialTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second})
	t.Cleanup(func() { c.Close() })
	return c
}

// pipeline writes every command in one write and returns the replies in
// order.
func pipeline(t *testing.T, addr string, cmds [][]string) []string {
	t.Helper()
	replies, err := pipelineErr(addr, cmds)
	if err != nil {
		t.Fatal(err)
	}
	return replies
}

// pipelineErr is pipeline for goroutines other than the test's: it writes
// from a goroutine of its own, so that neither side blocks on a full
// socket, and returns errors.
func pipelineErr(addr string, cmds [][]string) ([]string, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	var req []byte
	for _, c := range cmds {
		req = encodeCommand(req, c...)
	}
	werr := make(chan error, 1)
	go func() {
		_, err := nc.Write(req)
		werr <- err
	}()
	r := bufio.NewReader(nc)
	replies := make([]string, len(cmds))
	for i := range replies {
		rep, err := readReply(r)
		if err != nil {
			nc.Close()
			<-werr
			return nil, fmt.Errorf("%s: reply %d of %d: %w", addr, i, len(cmds), err)
		}
		replies[i] = rep.raw
	}
	if err := <-werr; err != nil {
		return nil, fmt.Errorf("%s: write: %w", addr, err)
	}
	return replies, nil
}
