package proxy_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
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
var respBadCases = []proxytest.BadCase{
	{Name: "negative multibulk count is skipped", In: []byte("*-5\r\nPING\r\n"), Want: "+PONG\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "negative bulk length", In: []byte("*1\r\n$-7\r\n"), Want: protocolError + "invalid bulk length\r\n", Same: true},
	{Name: "null bulk as argument", In: []byte("*1\r\n$-1\r\n"), Want: protocolError + "invalid bulk length\r\n", Same: true},
	{Name: "multibulk count beyond int32", In: []byte("*99999999999\r\n"), Want: protocolError + "invalid multibulk length\r\n", Same: true},
	{Name: "multibulk count over 1M", In: []byte("*2000000\r\n"), Want: protocolError + "invalid multibulk length\r\n"},
	{Name: "bulk length 1 GB", In: []byte("*1\r\n$1073741824\r\n"), Want: protocolError + "invalid bulk length\r\n", Same: true},
	{Name: "bulk length 512 MB plus one", In: []byte("*1\r\n$536870913\r\n"), Want: protocolError + "invalid bulk length\r\n", Same: true},
	{Name: "bulk length of 30 digits", In: append(append([]byte("*1\r\n$"), proxytest.Repeat("9", 30)...), "\r\n"...), Want: protocolError + "invalid bulk length\r\n", Same: true},
	{Name: "non-numeric multibulk count", In: []byte("*x\r\n"), Want: protocolError + "invalid multibulk length\r\n", Same: true},
	{Name: "non-numeric bulk length", In: []byte("*1\r\n$x\r\n"), Want: protocolError + "invalid bulk length\r\n", Same: true},
	{Name: "empty bulk length", In: []byte("*1\r\n$\r\n"), Want: protocolError + "invalid bulk length\r\n", Same: true},
	{Name: "empty multibulk count", In: []byte("*\r\n"), Want: protocolError + "invalid multibulk length\r\n", Same: true},
	{Name: "plus sign in count", In: []byte("*+1\r\n"), Want: protocolError + "invalid multibulk length\r\n", Same: true},
	{Name: "space after count", In: []byte("*1 \r\n"), Want: protocolError + "invalid multibulk length\r\n", Same: true},
	{Name: "leading zero in count", In: []byte("*01\r\n$4\r\nPING\r\n"), Want: protocolError + "invalid multibulk length\r\n", Same: true},
	{Name: "leading zero in bulk length", In: []byte("*1\r\n$04\r\nPING\r\n"), Want: protocolError + "invalid bulk length\r\n", Same: true},
	{Name: "minus zero count", In: []byte("*-0\r\nPING\r\n"), Want: protocolError + "invalid multibulk length\r\n", Same: true},
	{Name: "nested array for a bulk", In: []byte("*1\r\n*1\r\n$4\r\nPING\r\n"), Want: protocolError + "expected '$', got '*'\r\n", Same: true},
	{Name: "integer for a bulk", In: []byte("*1\r\n:1\r\n"), Want: protocolError + "expected '$', got ':'\r\n", Same: true},
	{Name: "simple string for a bulk", In: []byte("*1\r\n+PING\r\n"), Want: protocolError + "expected '$', got '+'\r\n", Same: true},
	{Name: "CR without LF after count", In: []byte("*1\r$4\r\nPING\r\n"), Want: protocolError + "invalid multibulk length\r\n"},
	{Name: "bulk without CRLF after it", In: []byte("*1\r\n$4\r\nPINGxx"), Want: protocolError + "expected CRLF after bulk data\r\n"},
	{Name: "bulk longer than its length", In: []byte("*2\r\n$3\r\nGET\r\n$1\r\nab\r\n"), Want: protocolError + "expected CRLF after bulk data\r\n"},
	{Name: "unbalanced double quote", In: []byte("SET \"a b\r\n"), Want: protocolError + "unbalanced quotes in request\r\n", Same: true},
	{Name: "unbalanced single quote", In: []byte("SET 'a b\r\n"), Want: protocolError + "unbalanced quotes in request\r\n", Same: true},
	{Name: "letter after closing quote", In: []byte("SET \"a\"b c\r\n"), Want: protocolError + "unbalanced quotes in request\r\n", Same: true},
	{Name: "inline line over 64 KB", In: proxytest.Repeat("x", 70000), Want: protocolError + "too big inline request\r\n", Same: true},
	{Name: "LF-only inline", In: []byte("PING\n"), Want: "+PONG\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "empty lines before a command", In: []byte("\r\n\r\nPING\r\n"), Want: "+PONG\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "reply type as inline command", In: []byte("$4\r\nPING\r\n"), Want: "-ERR unknown command '$4', with args beginning with: \r\n+PONG\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "binary garbage", In: []byte("\xff\xfe\xfd\r\n"), Want: "-ERR unknown command '\xff\xfe\xfd', with args beginning with: \r\n", End: proxytest.EndOpen, Same: true},
	{Name: "control bytes in a command name", In: []byte("a\x01b\x7fc\r\n"), Want: "-ERR unknown command 'a\x01b\x7fc', with args beginning with: \r\n", End: proxytest.EndOpen, Same: true},
	{Name: "newline inside a bulk command name", In: []byte("*1\r\n$3\r\na\nb\r\n"), Want: "-ERR unknown command 'a b', with args beginning with: \r\n", End: proxytest.EndOpen, Same: true},
	{Name: "200-byte command name", In: append(proxytest.Repeat("x", 200), "\r\n"...), Want: "-ERR unknown command '" + strings.Repeat("x", 128) + "', with args beginning with: \r\n", End: proxytest.EndOpen, Same: true},
	{Name: "inline line over 64 KB with newline", In: append(proxytest.Repeat("x", 70000), "\r\n"...), Want: protocolError + "too big inline request\r\n"},
	{Name: "good request then bad", In: []byte("*1\r\n$4\r\nPING\r\n*1\r\n$-2\r\n"), Want: "+PONG\r\n" + protocolError + "invalid bulk length\r\n", Same: true},
	{Name: "70 KB key", In: []byte(fmt.Sprintf("*2\r\n$3\r\nGET\r\n$70000\r\n%s\r\n", proxytest.Repeat("k", 70000))), Want: "$-1\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "binary garbage with NUL", In: []byte("\x00\xff\xfe\x01garbage\r\n"), End: proxytest.EndHold, Cont: []byte("PING\r\n"), ContWant: "+PONG\r\n"},
	{Name: "CR without LF inline, held", In: []byte("PING\rPING\r"), End: proxytest.EndHold, Cont: []byte("\n"), ContWant: "$4\r\nPING\r\n", Same: true},
	{Name: "LF-only multibulk, held", In: []byte("*1\n$4\nPING\n"), End: proxytest.EndHold, Cont: []byte("\r\n"), ContWant: protocolError + "invalid multibulk length\r\n", ContClose: true, Same: true},
	{Name: "half a frame, held", In: []byte("*2\r\n$3\r\nGET\r\n$5\r\nab"), End: proxytest.EndHold, Cont: []byte("cde\r\n"), ContWant: "$-1\r\n", Same: true},
	{Name: "half a bulk length, held", In: []byte("*1\r\n$10"), End: proxytest.EndHold, Cont: []byte("\r\nPING567890\r\n"), ContWant: "-ERR unknown command 'PING567890', with args beginning with: \r\n", Same: true},
	{Name: "512 MB bulk announced, held", In: []byte("*3\r\n$3\r\nSET\r\n$6\r\nftbig1\r\n$536870912\r\nabc"), End: proxytest.EndHold, Same: true},
	{Name: "1M arguments announced, held", In: []byte("*1048576\r\n$3\r\nGET\r\n"), End: proxytest.EndHold, Same: true},
	{Name: "truncated frame, then close", In: []byte("*3\r\n$3\r\nSET\r\n$8\r\nfttrunc1\r\n$2\r\nv"), End: proxytest.EndHangup, Same: true},
	{Name: "truncated length, then close", In: []byte("*1\r\n$10"), End: proxytest.EndHangup, Same: true},
}

// TestBadInputRESP sends each malformed input to the proxy (and, where the
// answer is Redis's, to redis-server too): each gets Redis's exact reply
// or a clean close; a client connected all along and a new client are
// served after each; nothing of a truncated request reaches a server.
func TestBadInputRESP(t *testing.T) {
	proxytest.RunParallel(t)
	f := proxytest.StartFixture(t, proxytest.Pool{Keys: []string{"timeout: 2000"}}, proxytest.StartRedisBackends(t, 2))
	ref := testservers.Redis(t)
	p := proxytest.BadProto{Follow: "*1\r\n$4\r\nPING\r\n", FollowWant: "+PONG\r\n", Bystander: redisBystander}
	proxytest.RunBadTable(t, f.Addr, ref.Addr, p, respBadCases)
	c := proxytest.Dial(t, f.Addr)
	for _, key := range []string{"fttrunc1", "ftbig1"} {
		if got := c.Do("EXISTS", key); got != ":0\r\n" {
			t.Errorf("EXISTS %s after its request was cut off: %q, want :0", key, got)
		}
	}
}

// redisBystander sets key to a value made of i and reads it back.
func redisBystander(c *proxytest.Conn, key string, i int) error {
	val := fmt.Sprint("value-", i)
	if err := c.Exchange(string(proxytest.EncodeCommand(nil, "SET", key, val)), "+OK\r\n"); err != nil {
		return err
	}
	return c.Exchange(string(proxytest.EncodeCommand(nil, "GET", key)), proxytest.Bulk(val))
}

// TestMalformedRequest checks that a stream the proxy cannot read gets
// Redis's own error, after the replies to what came before, and is closed,
// while another client connected at the same time is unaffected.
func TestMalformedRequest(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 4, proxytest.Pool{})
	direct := testservers.Redis(t)
	other := proxytest.Dial(t, f.Addr)
	if r := other.Do("SET", "other", "0"); r != "+OK\r\n" {
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
		pc, rc := proxytest.Dial(t, f.Addr), proxytest.Dial(t, direct.Addr)
		rc.Net.SetDeadline(time.Now().Add(5 * time.Second))
		pc.Write([]byte(tc.in))
		rc.Write([]byte(tc.in))
		for done := false; !done; {
			rep, err := proxytest.ReadReply(rc.R)
			want := rep.Raw
			if err != nil {
				t.Fatalf("%s: redis ended its replies with %v, not a protocol error", tc.name, err)
			}
			if got := pc.Read(); got != want {
				t.Errorf("%s: proxy %q, redis %q", tc.name, got, want)
			}
			done = strings.HasPrefix(want, "-ERR Protocol error")
		}
		pc.ExpectClosed()
		v := strconv.Itoa(i + 1)
		if r := other.Do("INCR", "other"); r != ":"+v+"\r\n" {
			t.Fatalf("%s: other client's INCR: %q, want :%s", tc.name, r, v)
		}
	}
}
