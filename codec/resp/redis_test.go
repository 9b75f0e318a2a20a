package resp_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// dial connects to a test server with a deadline for the whole exchange.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return c
}

// TestRedisAgrees sends each malformed request that redis-server detects to
// a real redis-server and checks that it answers "-ERR " + our message.
func TestRedisAgrees(t *testing.T) {
	srv := testservers.Redis(t)
	for _, tt := range resp.RedisMalformedRequests() {
		t.Run(tt.Name, func(t *testing.T) {
			c := dial(t, srv.Addr)
			if _, err := c.Write([]byte(tt.In)); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if want := "-ERR " + tt.Msg + "\r\n"; line != want {
				t.Fatalf("redis answered %q, we say %q", line, want)
			}
		})
	}
}

// TestRedisSplitsInlineLikeUs sends inline lines to redis-server as the
// arguments of RPUSH, reads them back with LRANGE, and compares them with
// resp.ReadRequest's arguments.
func TestRedisSplitsInlineLikeUs(t *testing.T) {
	srv := testservers.Redis(t)
	lines := []string{
		`a b  c`, "a\tb\vc", `"a b" 'c d'`, `"\x41\x7a\x4G\n\r\t\b\a\\\"\q"`, `'it\'s' '\n'`,
		`x"y z"`, `'' ""`, "\"a\"\fb", `"\xff\x00"`, `"unicode é"`,
	}
	c := dial(t, srv.Addr)
	r := bufio.NewReader(c)
	for i, line := range lines {
		key := "list" + strconv.Itoa(i)
		var req resp.Request
		in := []byte("RPUSH " + key + " " + line + "\r\n")
		if n, err := resp.ReadRequest(in, &req, resp.Limits{}); n != len(in) || err != nil {
			t.Fatalf("%q: n=%d err=%v", line, n, err)
		}
		ours := resp.ArgStrings(req.Args[2:])
		if _, err := c.Write(in); err != nil {
			t.Fatal(err)
		}
		if reply, err := r.ReadString('\n'); err != nil || reply[0] != ':' {
			t.Fatalf("%q: RPUSH answered %q, %v", line, reply, err)
		}
		if _, err := c.Write(resp.AppendCommand(nil, []byte("LRANGE"), []byte(key), []byte("0"), []byte("-1"))); err != nil {
			t.Fatal(err)
		}
		theirs := readBulkArray(t, r)
		if strings.Join(ours, "\x01") != strings.Join(theirs, "\x01") || len(ours) != len(theirs) {
			t.Errorf("%q: we split %q, redis %q", line, ours, theirs)
		}
	}
}

// readBulkArray reads an array of bulk strings with plain bufio, independent
// of the code under test.
func readBulkArray(t *testing.T, r *bufio.Reader) []string {
	t.Helper()
	head, err := r.ReadString('\n')
	if err != nil || head[0] != '*' {
		t.Fatalf("array header %q, %v", head, err)
	}
	count, _ := strconv.Atoi(strings.TrimSpace(head[1:]))
	out := []string{}
	for i := 0; i < count; i++ {
		h, err := r.ReadString('\n')
		if err != nil || h[0] != '$' {
			t.Fatalf("bulk header %q, %v", h, err)
		}
		size, _ := strconv.Atoi(strings.TrimSpace(h[1:]))
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			t.Fatal(err)
		}
		out = append(out, string(buf[:size]))
	}
	return out
}

// TestRedisRepliesFrame sends commands whose replies cover every RESP2 and
// RESP3 type to a real redis-server, and checks that resp.ReadReply frames the
// stream into exactly one reply per command, with the expected type, both
// on the whole stream and when it arrives byte by byte.
func TestRedisRepliesFrame(t *testing.T) {
	srv := testservers.Redis(t, "--enable-debug-command", "yes")
	cmds := []struct {
		args  string
		types string // the type byte of each reply the command gets
	}{
		{"SET k v", "+"}, {"RPUSH l a b c", ":"}, {"GET k", "$"}, {"GET missing", "$"},
		{"LRANGE l 0 -1", "*"}, {"NOSUCHCOMMAND", "-"}, {"HELLO 3", "%"},
		{"GET missing", "_"}, {"HSET h f1 v1 f2 v2", ":"}, {"HGETALL h", "%"},
		{"SADD s x y", ":"}, {"SMEMBERS s", "~"}, {"ZADD z 1.5 m", ":"}, {"ZSCORE z m", ","},
		{"DEBUG PROTOCOL true", "#"}, {"DEBUG PROTOCOL false", "#"}, {"DEBUG PROTOCOL bignum", "("},
		{"DEBUG PROTOCOL verbatim", "="}, {"DEBUG PROTOCOL attrib", "|"}, {"DEBUG PROTOCOL push", ">$"},
		{"DEBUG PROTOCOL map", "%"}, {"DEBUG PROTOCOL set", "~"}, {"DEBUG PROTOCOL double", ","},
		{"DEBUG PROTOCOL null", "_"}, {"DEBUG PROTOCOL array", "*"}, {"INFO server", "="},
		{"EVAL \"return {1,{2,{3,{'x'}}},redis.error_reply('E')}\" 0", "*"},
	}
	var out []byte
	var types []byte
	for _, c := range cmds {
		out = append(out, c.args+"\r\n"...)
		types = append(types, c.types...)
	}
	conn := dial(t, srv.Addr)
	if _, err := conn.Write(out); err != nil {
		t.Fatal(err)
	}
	stream := readReplies(t, conn, len(types))
	pos := 0
	var lengths []int
	for i, typ := range types {
		n, err := resp.ReadReply(stream[pos:])
		if err != nil || n == 0 {
			t.Fatalf("reply %d: n=%d err=%v at %q", i, n, err, stream[pos:])
		}
		if stream[pos] != typ {
			t.Errorf("reply %d is %q, want type %c", i, stream[pos:pos+n], typ)
		}
		pos += n
		lengths = append(lengths, n)
	}
	if pos != len(stream) {
		t.Fatalf("%d bytes left after %d replies: %q", len(stream)-pos, len(types), stream[pos:])
	}
	if got, err := resp.FeedReplies(stream, 1); err != nil || !reflect.DeepEqual(got, lengths) {
		t.Fatalf("byte by byte: %v, %v; all at once: %v", got, err, lengths)
	}
	// A Reader decodes the same replies, of the same types.
	r := resp.NewReader(iotest.OneByteReader(bytes.NewReader(stream)), len(stream))
	for i, typ := range types {
		v, err := r.ReadValue()
		if err != nil || byte(v.Kind) != typ && !(typ == '|' && v.Attrs != nil) {
			t.Fatalf("reply %d: kind %q attrs %d, %v; want type %c", i, byte(v.Kind), len(v.Attrs), err, typ)
		}
	}
}

// readReplies reads from conn until want replies are framed.
func readReplies(t *testing.T, conn net.Conn, want int) []byte {
	t.Helper()
	var stream []byte
	buf := make([]byte, 64<<10)
	for {
		got, pos := 0, 0
		for {
			n, err := resp.ReadReply(stream[pos:])
			if err != nil {
				t.Fatalf("after %d replies: %v at %q", got, err, stream[pos:])
			}
			if n == 0 {
				break
			}
			pos += n
			got++
		}
		if got >= want {
			return stream
		}
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("read after %d of %d replies: %v", got, want, err)
		}
		stream = append(stream, buf[:n]...)
	}
}
