package proxy_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// mcQuiet is how long a connection must stay silent before its answer is
// taken as complete.
const mcQuiet = 2 * time.Second

// mcBadCase is malformed input. It is sent in one write (followed by
// "version\r\n" unless bare), and then "get <key>\r\nversion\r\n" if the
// connection is still open. Through the proxy the answers and the
// connection's state must be those of memcached, except where proxy is set:
// a deliberate difference (see codec/memcache's ReadRequest), whose exact
// first answer and state are given instead.
type mcBadCase struct {
	name, key, input string
	bare             bool
	proxy            *mcOutcome
}

// mcOutcome is what a connection answered and whether it closed.
type mcOutcome struct {
	reply  string
	closed bool
}

func (o mcOutcome) String() string { return fmt.Sprintf("%.300q (closed %v)", o.reply, o.closed) }

// mcManyKeys is a get of n distinct keys.
func mcManyKeys(n int) string { return "get " + strings.Join(numberedKeys("many", n), " ") + "\r\n" }

func mcBadCases() []mcBadCase {
	k251 := strings.Repeat("k", 251)
	big := strings.Repeat("z", 2_000_000)
	return []mcBadCase{
		{name: "byte count too short", key: "bad:short", input: "set bad:short 0 0 2\r\nabcd\r\n"},
		{name: "byte count too long", key: "bad:long", input: "set bad:long 0 0 10\r\nabc\r\n"},
		{name: "byte count too long, bare", key: "bad:long2", input: "set bad:long2 0 0 10\r\nabc\r\n", bare: true},
		{name: "missing crlf after data", key: "bad:nocrlf", input: "set bad:nocrlf 0 0 3\r\nabcXYget bad:nocrlf\r\n"},
		{name: "missing crlf, next request follows", key: "bad:nocrlf2", input: "set bad:nocrlf2 0 0 3\r\nabc"},
		{name: "data ends in lf only", key: "bad:lf", input: "set bad:lf 0 0 3\r\nabc\nx\r\n"},
		{name: "get key of 251 bytes", key: "bad:k", input: "get " + k251 + "\r\n"},
		{name: "set key of 251 bytes", key: "bad:k", input: "set " + k251 + " 0 0 1\r\nx\r\n"},
		{name: "mg key of 251 bytes", key: "bad:k", input: "mg " + k251 + " v\r\n"},
		{name: "unknown command", key: "bad:u", input: "foo bar\r\n"},
		{name: "upper-case command", key: "bad:u", input: "GET bad:u\r\n"},
		{name: "empty line", key: "bad:e", input: "\r\n"},
		{name: "bare lf", key: "bad:e", input: "\n"},
		{name: "line over the limit", key: "bad:line", input: strings.Repeat("x", 3000), bare: true},
		{name: "get line over 2048 bytes", key: "many:3", input: mcManyKeys(400)},
		{name: "non-numeric length", key: "bad:nn", input: "set bad:nn 0 0 abc\r\nabc\r\n"},
		{name: "negative length", key: "bad:neg", input: "set bad:neg 0 0 -1\r\nx\r\n"},
		{name: "non-numeric flags", key: "bad:fl", input: "set bad:fl x 0 1\r\nx\r\n"},
		{name: "bad exptime", key: "bad:ex", input: "set bad:ex 0 soon 1\r\nx\r\ntouch bad:ex soon\r\ngat soon bad:ex\r\n"},
		{name: "bad delta", key: "bad:d", input: "incr bad:d x\r\ndecr bad:d -1\r\n"},
		{name: "bad delete", key: "bad:del", input: "delete bad:del 5\r\ndelete bad:del 0 x\r\n"},
		{name: "too few tokens", key: "bad:t", input: "set bad:t 0 0\r\nincr bad:t\r\nget\r\ntouch bad:t\r\n"},
		{name: "too many tokens", key: "bad:t", input: "set bad:t 0 0 1 noreply extra\r\nx\r\n"},
		{name: "nul in the line", key: "bad:n", input: "get bad:n\x00tail\r\n"},
		{name: "bad cas unique", key: "bad:cas", input: "cas bad:cas 0 0 1 x\r\nx\r\n"},
		{name: "ms without length", key: "bad:ms", input: "ms bad:ms\r\n"},
		{name: "ms bad length", key: "bad:ms", input: "ms bad:ms x\r\nab\r\n"},
		{name: "ms bad flag", key: "bad:ms", input: "ms bad:ms 2 !\r\nab\r\n"},
		{name: "ms byte count too short", key: "bad:ms", input: "ms bad:ms 2\r\nabcd\r\n"},
		{name: "mg bad flag", key: "bad:mg", input: "mg bad:mg v !\r\n"},
		{name: "value over the limit", key: "bad:big", input: "set bad:big 0 0 2000000\r\n" + big + "\r\n"},
		{name: "value over the limit, noreply", key: "bad:big2", input: "set bad:big2 0 0 2000000 noreply\r\n" + big + "\r\n"},
		{name: "value over the limit replaces", key: "bad:big3",
			input: "set bad:big3 0 0 1\r\nx\r\nappend bad:big3 0 0 2000000\r\n" + big + "\r\n"},
		{name: "quit", key: "bad:q", input: "quit\r\n"},
		{
			name: "command line over the limit", key: "bad:line2", input: "set " + strings.Repeat("y", 3000) + " 0 0 1\r\nx\r\n",
			proxy: &mcOutcome{reply: "", closed: true},
		},
		{
			name: "too many keys", key: "many:1", input: mcManyKeys(1<<16 + 1),
			proxy: &mcOutcome{reply: "CLIENT_ERROR too many keys\r\nVERSION x\r\n"},
		},
	}
}

// exchange sends one case to addr and returns the outcomes of its two steps.
// It runs off the test's goroutine, so it returns its errors.
func (tc mcBadCase) exchange(addr string) (first, second mcOutcome, err error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return first, second, err
	}
	defer nc.Close()
	c := newClientConn(nil, nc)
	in := tc.input
	if !tc.bare {
		in += "version\r\n"
	}
	werr := c.writeAsync(in)
	first.reply, first.closed = readQuiet(c, mcQuiet)
	if err := <-werr; err != nil && !first.closed {
		return first, second, fmt.Errorf("%s: write: %w", addr, err)
	}
	if first.closed {
		return first, mcOutcome{closed: true}, nil
	}
	werr = c.writeAsync("get " + tc.key + "\r\nversion\r\n")
	second.reply, second.closed = readQuiet(c, mcQuiet)
	if err := <-werr; err != nil && !second.closed {
		return first, second, fmt.Errorf("%s: write: %w", addr, err)
	}
	return first, second, nil
}

// mcBadResult is what one case got through the proxy and from memcached.
type mcBadResult struct {
	p1, p2, d1, d2 mcOutcome
	err            error
}

// TestMemcacheBadInput sends malformed input through the proxy and straight
// to memcached: the answers and the connection's state must match, and a
// client busy at the same time must not notice. Every case runs at once, on
// connections of its own, since each waits for silence.
func TestMemcacheBadInput(t *testing.T) {
	f := newMemcacheFixture(t, 4)
	stop, bystander := make(chan struct{}), make(chan error, 1)
	go func() { bystander <- mcBystander(dialClient(t, f.addr), stop) }()
	cases := mcBadCases()
	results := make([]mcBadResult, len(cases))
	var wg sync.WaitGroup
	for i, tc := range cases {
		wg.Go(func() {
			r := &results[i]
			var perr, derr error
			var inner sync.WaitGroup
			inner.Go(func() { r.p1, r.p2, perr = tc.exchange(f.addr) })
			inner.Go(func() { r.d1, r.d2, derr = tc.exchange(f.direct.Addr) })
			inner.Wait()
			r.err = errors.Join(perr, derr)
		})
	}
	wg.Wait()
	close(stop)
	if err := <-bystander; err != nil {
		t.Errorf("client connected at the same time: %v", err)
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { results[i].check(t, tc) })
	}
}

// check compares one case's outcomes.
func (r mcBadResult) check(t *testing.T, tc mcBadCase) {
	if r.err != nil {
		t.Fatal(r.err)
	}
	if tc.proxy != nil {
		if r.p1 != *tc.proxy {
			t.Errorf("deliberate difference: through the proxy %v, want %v (memcached: %v)", r.p1, tc.proxy, r.d1)
		}
		return
	}
	if r.p1 != r.d1 {
		t.Errorf("first answer: through the proxy %v, memcached %v", r.p1, r.d1)
	}
	if r.p2 != r.d2 {
		t.Errorf("after it: through the proxy %v, memcached %v", r.p2, r.d2)
	}
}

// mcBystander sets and gets its own key over one connection until stop is
// closed, and reports the first wrong answer.
func mcBystander(c *clientConn, stop <-chan struct{}) error {
	for i := 0; ; i++ {
		select {
		case <-stop:
			if i < 10 {
				return fmt.Errorf("only %d round trips", i)
			}
			return nil
		default:
		}
		v := fmt.Sprint(i)
		want := fmt.Sprintf("STORED\r\nVALUE bystander 0 %d\r\n%s\r\nEND\r\n", len(v), v)
		got, err := c.tryRoundTrip(fmt.Sprintf("set bystander 0 0 %d\r\n%s\r\nget bystander\r\n", len(v), v))
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("round %d: got %q, want %q", i, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readQuiet reads until the peer closes the connection, has been silent for
// quiet, or has answered a VERSION line (every exchange that uses it ends
// with "version"), and then for a short while more to catch stray bytes. It
// reports what arrived and whether the connection closed.
func readQuiet(c *clientConn, quiet time.Duration) (string, bool) {
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
			return normalizeMemcache(b.String()), false
		default:
			return normalizeMemcache(b.String()), true
		}
	}
}

var mcEndsInVersion = regexp.MustCompile(`(^|\n)VERSION [^\r\n]*\r\n$`)
