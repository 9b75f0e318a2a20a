package proxytest

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

// EncodeCommand appends args as a RESP multibulk request.
func EncodeCommand(dst []byte, args ...string) []byte {
	dst = fmt.Appendf(dst, "*%d\r\n", len(args))
	for _, a := range args {
		dst = fmt.Appendf(dst, "$%d\r\n%s\r\n", len(a), a)
	}
	return dst
}

// Bulk is the RESP encoding of a Bulk string.
func Bulk(s string) string { return fmt.Sprintf("$%d\r\n%s\r\n", len(s), s) }

// Array is the RESP encoding of an Array of already encoded elements.
func Array(elems ...string) string {
	return fmt.Sprintf("*%d\r\n", len(elems)) + strings.Join(elems, "")
}

// NilBulk is the RESP2 null bulk string.
const NilBulk = "$-1\r\n"

// Reply is one RESP2 or RESP3 reply: its exact bytes, and what they say.
type Reply struct {
	Raw   string  // the exact bytes (of a whole reply, not of an element)
	Kind  byte    // the type byte: '+', '-', ':', '$', '*' or a RESP3 one
	Str   string  // a simple string, error or bulk string
	Null  bool    // a null bulk string or array, or RESP3's null
	Num   int64   // an integer, or a bulk string's or array's length
	Elems []Reply // an aggregate's elements (a map's keys and values alternating)
}

// String renders the reply for failure messages.
func (r Reply) String() string {
	switch {
	case r.Null:
		return "(nil)"
	case r.Kind == '*':
		parts := make([]string, len(r.Elems))
		for i, e := range r.Elems {
			parts[i] = e.String()
		}
		return "[" + strings.Join(parts, " ") + "]"
	case r.Kind == ':':
		return strconv.FormatInt(r.Num, 10)
	}
	s := r.Str
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return string(r.Kind) + s
}

// ReadReply reads one RESP2 or RESP3 reply (not the streamed forms). On an
// error, Raw holds what was read.
func ReadReply(r *bufio.Reader) (Reply, error) {
	var b strings.Builder
	rep, err := readReplyInto(r, &b, 0)
	rep.Raw = b.String()
	return rep, err
}

func readReplyInto(r *bufio.Reader, b *strings.Builder, depth int) (Reply, error) {
	line, err := r.ReadString('\n')
	b.WriteString(line)
	if err != nil {
		return Reply{}, err
	}
	if len(line) < 3 || !strings.HasSuffix(line, "\r\n") || depth > 16 {
		return Reply{}, fmt.Errorf("bad reply line %q", line)
	}
	rep := Reply{Kind: line[0], Str: line[1 : len(line)-2]}
	switch rep.Kind {
	case '+', '-', ',', '(', '#':
		return rep, nil
	case '_':
		rep.Null = true
		return rep, nil
	case ':', '$', '*', '%', '~', '>', '=', '!':
	default:
		return rep, fmt.Errorf("unknown reply type in %q", line)
	}
	n, err := strconv.ParseInt(rep.Str, 10, 64)
	if err != nil {
		return rep, fmt.Errorf("bad number in %q", line)
	}
	rep.Str, rep.Num = "", n
	switch {
	case rep.Kind == ':':
		return rep, nil
	case n < 0:
		rep.Null = true
		return rep, nil
	case rep.Kind == '$' || rep.Kind == '=' || rep.Kind == '!':
		if _, err := io.CopyN(b, r, n+2); err != nil {
			return rep, err
		}
		s := b.String()
		rep.Str = s[len(s)-int(n)-2 : len(s)-2]
		return rep, nil
	}
	if rep.Kind == '%' {
		n *= 2
	}
	for i := int64(0); i < n; i++ {
		e, err := readReplyInto(r, b, depth+1)
		if err != nil {
			return rep, err
		}
		rep.Elems = append(rep.Elems, e)
	}
	return rep, nil
}

// Hello3 switches the connection to RESP3 (HELLO 3) and checks the
// answer is Redis's map.
func (c *Conn) Hello3() {
	c.tb.Helper()
	if got := c.Do("HELLO", "3"); !strings.HasPrefix(got, "%7\r\n$6\r\nserver\r\n") {
		c.tb.Fatalf("HELLO 3: %q", got)
	}
}

// Read returns the next reply's exact bytes.
func (c *Conn) Read() string {
	c.tb.Helper()
	rep, err := ReadReply(c.R)
	if err != nil {
		c.tb.Fatalf("read reply: %v", err)
	}
	return rep.Raw
}

// Do sends one command and returns its reply's exact bytes.
func (c *Conn) Do(args ...string) string {
	c.tb.Helper()
	c.Write(EncodeCommand(nil, args...))
	return c.Read()
}

// TryDo sends one command and reads its reply within d.
func (c *Conn) TryDo(d time.Duration, args ...string) (Reply, error) {
	c.Net.SetDeadline(time.Now().Add(d))
	if _, err := c.Net.Write(EncodeCommand(nil, args...)); err != nil {
		return Reply{}, err
	}
	return ReadReply(c.R)
}

// RedisFixture is a proxy in front of real redis servers, and a go-redis
// client.
type RedisFixture struct {
	*Fixture
	Client *redis.Client
}

// NewRedisFixture starts n backends and a proxy pool over them described by
// p (its servers are filled in when empty).
func NewRedisFixture(t *testing.T, n int, p Pool) *RedisFixture {
	t.Helper()
	f := &RedisFixture{Fixture: StartFixture(t, p, StartRedisBackends(t, n))}
	f.Client = NewGoRedis(t, f.Addr)
	return f
}

// NewGoRedis returns a RESP2 go-redis client closed by the test's cleanup,
// once it has answered PING.
func NewGoRedis(t *testing.T, addr string) *redis.Client {
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

// NoRetryClient returns a RESP2 go-redis client that never retries, so
// every error the proxy answers is seen; it speaks TLS with tc when tc is
// not nil, and poolSize 0 is go-redis's default.
func NoRetryClient(t *testing.T, addr string, tc *tls.Config, poolSize int) *redis.Client {
	return noRetryClient(t, addr, tc, poolSize, 2)
}

// noRetryClient is NoRetryClient speaking protocol (2 or 3).
func noRetryClient(t *testing.T, addr string, tc *tls.Config, poolSize, protocol int) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: protocol, DisableIdentity: true, MaxRetries: -1,
		TLSConfig: tc, PoolSize: poolSize, DialTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second})
	t.Cleanup(func() { c.Close() })
	return c
}

// Pipeline writes every command in one write and returns the replies in
// order.
func Pipeline(t *testing.T, addr string, cmds [][]string) []string {
	t.Helper()
	replies, err := PipelineErr(addr, cmds)
	if err != nil {
		t.Fatal(err)
	}
	return replies
}

// PipelineErr is pipeline for goroutines other than the test's: it writes
// from a goroutine of its own, so that neither side blocks on a full
// socket, and returns errors.
func PipelineErr(addr string, cmds [][]string) ([]string, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	var req []byte
	for _, c := range cmds {
		req = EncodeCommand(req, c...)
	}
	werr := make(chan error, 1)
	go func() {
		_, err := nc.Write(req)
		werr <- err
	}()
	r := bufio.NewReader(nc)
	replies := make([]string, len(cmds))
	for i := range replies {
		rep, err := ReadReply(r)
		if err != nil {
			nc.Close()
			<-werr
			return nil, fmt.Errorf("%s: reply %d of %d: %w", addr, i, len(cmds), err)
		}
		replies[i] = rep.Raw
	}
	if err := <-werr; err != nil {
		return nil, fmt.Errorf("%s: write: %w", addr, err)
	}
	return replies, nil
}

// Text is a raw reply as tests compare it: a bulk string's content, a null
// as "(nil)", any other reply's first line without its CRLF.
func Text(raw string) string {
	switch {
	case raw == NilBulk:
		return "(nil)"
	case strings.HasPrefix(raw, "$"):
		_, body, _ := strings.Cut(raw, "\r\n")
		return strings.TrimSuffix(body, "\r\n")
	}
	line, _, _ := strings.Cut(raw, "\r\n")
	return line
}

// Texts sends cmds to addr on one connection and returns each reply's
// Text.
func Texts(t *testing.T, addr string, cmds [][]string) []string {
	t.Helper()
	out := Pipeline(t, addr, cmds)
	for i, raw := range out {
		out[i] = Text(raw)
	}
	return out
}

// Command sends one command to addr on a new connection and returns its
// reply's Text.
func Command(t *testing.T, addr string, args ...string) string {
	t.Helper()
	return Texts(t, addr, [][]string{args})[0]
}
