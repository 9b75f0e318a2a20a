package proxy_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

const protocolError = "-ERR Protocol error: "

// respBadCases are malformed and hostile RESP inputs with Redis 7's own
// answers. Cases not marked same are where the proxy deliberately differs
// (see codec/resp.ReadRequest): it wants CRLF after a count and after a
// bulk (Redis skips two bytes unchecked), caps arguments at 1M, refuses an
// inline line over 64 KB whether or not its newline came in the same read
// (Redis decides by how the bytes were segmented), and ends an inline line
// at its newline even after a NUL.
var respBadCases = []badCase{
	{name: "negative multibulk count is skipped", in: []byte("*-5\r\nPING\r\n"), want: "+PONG\r\n", end: endOpen, same: true},
	{name: "negative bulk length", in: []byte("*1\r\n$-7\r\n"), want: protocolError + "invalid bulk length\r\n", same: true},
	{name: "null bulk as argument", in: []byte("*1\r\n$-1\r\n"), want: protocolError + "invalid bulk length\r\n", same: true},
	{name: "multibulk count beyond int32", in: []byte("*99999999999\r\n"), want: protocolError + "invalid multibulk length\r\n", same: true},
	{name: "multibulk count over 1M", in: []byte("*2000000\r\n"), want: protocolError + "invalid multibulk length\r\n"},
	{name: "bulk length 1 GB", in: []byte("*1\r\n$1073741824\r\n"), want: protocolError + "invalid bulk length\r\n", same: true},
	{name: "bulk length 512 MB plus one", in: []byte("*1\r\n$536870913\r\n"), want: protocolError + "invalid bulk length\r\n", same: true},
	{name: "bulk length of 30 digits", in: append(append([]byte("*1\r\n$"), repeat("9", 30)...), "\r\n"...), want: protocolError + "invalid bulk length\r\n", same: true},
	{name: "non-numeric multibulk count", in: []byte("*x\r\n"), want: protocolError + "invalid multibulk length\r\n", same: true},
	{name: "non-numeric bulk length", in: []byte("*1\r\n$x\r\n"), want: protocolError + "invalid bulk length\r\n", same: true},
	{name: "empty bulk length", in: []byte("*1\r\n$\r\n"), want: protocolError + "invalid bulk length\r\n", same: true},
	{name: "empty multibulk count", in: []byte("*\r\n"), want: protocolError + "invalid multibulk length\r\n", same: true},
	{name: "plus sign in count", in: []byte("*+1\r\n"), want: protocolError + "invalid multibulk length\r\n", same: true},
	{name: "space after count", in: []byte("*1 \r\n"), want: protocolError + "invalid multibulk length\r\n", same: true},
	{name: "leading zero in count", in: []byte("*01\r\n$4\r\nPING\r\n"), want: protocolError + "invalid multibulk length\r\n", same: true},
	{name: "leading zero in bulk length", in: []byte("*1\r\n$04\r\nPING\r\n"), want: protocolError + "invalid bulk length\r\n", same: true},
	{name: "minus zero count", in: []byte("*-0\r\nPING\r\n"), want: protocolError + "invalid multibulk length\r\n", same: true},
	{name: "nested array for a bulk", in: []byte("*1\r\n*1\r\n$4\r\nPING\r\n"), want: protocolError + "expected '$', got '*'\r\n", same: true},
	{name: "integer for a bulk", in: []byte("*1\r\n:1\r\n"), want: protocolError + "expected '$', got ':'\r\n", same: true},
	{name: "simple string for a bulk", in: []byte("*1\r\n+PING\r\n"), want: protocolError + "expected '$', got '+'\r\n", same: true},
	{name: "CR without LF after count", in: []byte("*1\r$4\r\nPING\r\n"), want: protocolError + "invalid multibulk length\r\n"},
	{name: "bulk without CRLF after it", in: []byte("*1\r\n$4\r\nPINGxx"), want: protocolError + "expected CRLF after bulk data\r\n"},
	{name: "bulk longer than its length", in: []byte("*2\r\n$3\r\nGET\r\n$1\r\nab\r\n"), want: protocolError + "expected CRLF after bulk data\r\n"},
	{name: "unbalanced double quote", in: []byte("SET \"a b\r\n"), want: protocolError + "unbalanced quotes in request\r\n", same: true},
	{name: "unbalanced single quote", in: []byte("SET 'a b\r\n"), want: protocolError + "unbalanced quotes in request\r\n", same: true},
	{name: "letter after closing quote", in: []byte("SET \"a\"b c\r\n"), want: protocolError + "unbalanced quotes in request\r\n", same: true},
	{name: "inline line over 64 KB", in: repeat("x", 70000), want: protocolError + "too big inline request\r\n", same: true},
	{name: "LF-only inline", in: []byte("PING\n"), want: "+PONG\r\n", end: endOpen, same: true},
	{name: "empty lines before a command", in: []byte("\r\n\r\nPING\r\n"), want: "+PONG\r\n", end: endOpen, same: true},
	{name: "reply type as inline command", in: []byte("$4\r\nPING\r\n"), want: "-ERR unknown command '$4', with args beginning with: \r\n+PONG\r\n", end: endOpen, same: true},
	{name: "binary garbage", in: []byte("\xff\xfe\xfd\r\n"), want: "-ERR unknown command '\xff\xfe\xfd', with args beginning with: \r\n", end: endOpen, same: true},
	{name: "control bytes in a command name", in: []byte("a\x01b\x7fc\r\n"), want: "-ERR unknown command 'a\x01b\x7fc', with args beginning with: \r\n", end: endOpen, same: true},
	{name: "newline inside a bulk command name", in: []byte("*1\r\n$3\r\na\nb\r\n"), want: "-ERR unknown command 'a b', with args beginning with: \r\n", end: endOpen, same: true},
	{name: "200-byte command name", in: append(repeat("x", 200), "\r\n"...), want: "-ERR unknown command '" + strings.Repeat("x", 128) + "', with args beginning with: \r\n", end: endOpen, same: true},
	{name: "inline line over 64 KB with newline", in: append(repeat("x", 70000), "\r\n"...), want: protocolError + "too big inline request\r\n"},
	{name: "good request then bad", in: []byte("*1\r\n$4\r\nPING\r\n*1\r\n$-2\r\n"), want: "+PONG\r\n" + protocolError + "invalid bulk length\r\n", same: true},
	{name: "70 KB key", in: []byte(fmt.Sprintf("*2\r\n$3\r\nGET\r\n$70000\r\n%s\r\n", repeat("k", 70000))), want: "$-1\r\n", end: endOpen, same: true},
	{name: "binary garbage with NUL", in: []byte("\x00\xff\xfe\x01garbage\r\n"), end: endHold, cont: []byte("PING\r\n"), contWant: "+PONG\r\n"},
	{name: "CR without LF inline, held", in: []byte("PING\rPING\r"), end: endHold, cont: []byte("\n"), contWant: "$4\r\nPING\r\n", same: true},
	{name: "LF-only multibulk, held", in: []byte("*1\n$4\nPING\n"), end: endHold, cont: []byte("\r\n"), contWant: protocolError + "invalid multibulk length\r\n", contClose: true, same: true},
	{name: "half a frame, held", in: []byte("*2\r\n$3\r\nGET\r\n$5\r\nab"), end: endHold, cont: []byte("cde\r\n"), contWant: "$-1\r\n", same: true},
	{name: "half a bulk length, held", in: []byte("*1\r\n$10"), end: endHold, cont: []byte("\r\nPING567890\r\n"), contWant: "-ERR unknown command 'PING567890', with args beginning with: \r\n", same: true},
	{name: "512 MB bulk announced, held", in: []byte("*3\r\n$3\r\nSET\r\n$6\r\nftbig1\r\n$536870912\r\nabc"), end: endHold, same: true},
	{name: "1M arguments announced, held", in: []byte("*1048576\r\n$3\r\nGET\r\n"), end: endHold, same: true},
	{name: "truncated frame, then close", in: []byte("*3\r\n$3\r\nSET\r\n$8\r\nfttrunc1\r\n$2\r\nv"), end: endHangup, same: true},
	{name: "truncated length, then close", in: []byte("*1\r\n$10"), end: endHangup, same: true},
}

// TestBadInputRESP sends each malformed input to the proxy (and, where the
// answer is Redis's, to redis-server too): each gets Redis's exact reply
// or a clean close; a client connected all along and a new client are
// served after each; nothing of a truncated request reaches a server.
func TestBadInputRESP(t *testing.T) {
	runParallel(t)
	f := startFixture(t, pool{keys: []string{"timeout: 2000"}}, startRedisBackends(t, 2))
	ref := testservers.Redis(t)
	p := badProto{follow: "*1\r\n$4\r\nPING\r\n", followWant: "+PONG\r\n", bystander: redisBystander}
	runBadTable(t, f.addr, ref.Addr, p, respBadCases)
	c := dialClient(t, f.addr)
	for _, key := range []string{"fttrunc1", "ftbig1"} {
		if got := c.do("EXISTS", key); got != ":0\r\n" {
			t.Errorf("EXISTS %s after its request was cut off: %q, want :0", key, got)
		}
	}
}

// redisBystander sets key to a value made of i and reads it back.
func redisBystander(c *clientConn, key string, i int) error {
	val := fmt.Sprint("value-", i)
	if err := c.exchange(string(encodeCommand(nil, "SET", key, val)), "+OK\r\n"); err != nil {
		return err
	}
	return c.exchange(string(encodeCommand(nil, "GET", key)), bulk(val))
}

// TestMalformedRequest checks that a stream the proxy cannot read gets
// Redis's own error, after the replies to what came before, and is closed,
// while another client connected at the same time is unaffected.
func TestMalformedRequest(t *testing.T) {
	f := newRedisFixture(t, 4, pool{})
	direct := testservers.Redis(t)
	other := dialClient(t, f.addr)
	if r := other.do("SET", "other", "0"); r != "+OK\r\n" {
		t.Fatalf("other client: %q", r)
	}
	tests := []struct{ name, in string }{
		{"bad bulk length", "*2\r\n$3\r\nGET\r\n$x\r\n"},
		{"bad multibulk length", "*x\r\n"},
		{"no dollar", "*1\r\nGET\r\n"},
		{"negative bulk length", "*1\r\n$-5\r\n"},
		{"huge multibulk length", "*99999999999\r\n"},
		{"unbalanced quotes", "SET \"a b\r\n"},
		{"after a good request", "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$x\r\n"},
		{"after an inline request", "PING\r\n*2\r\n$3\r\nGET\r\nfoo\r\n"},
	}
	for i, tc := range tests {
		pc, rc := dialClient(t, f.addr), dialClient(t, direct.Addr)
		rc.nc.SetDeadline(time.Now().Add(5 * time.Second))
		pc.write([]byte(tc.in))
		rc.write([]byte(tc.in))
		for done := false; !done; {
			rep, err := readReply(rc.r)
			want := rep.raw
			if err != nil {
				t.Fatalf("%s: redis ended its replies with %v, not a protocol error", tc.name, err)
			}
			if got := pc.read(); got != want {
				t.Errorf("%s: proxy %q, redis %q", tc.name, got, want)
			}
			done = strings.HasPrefix(want, "-ERR Protocol error")
		}
		pc.expectClosed()
		v := strconv.Itoa(i + 1)
		if r := other.do("INCR", "other"); r != ":"+v+"\r\n" {
			t.Fatalf("%s: other client's INCR: %q, want :%s", tc.name, r, v)
		}
	}
}
