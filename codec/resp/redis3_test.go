package resp_test

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// resp3Command is a command of TestRedisResp3Replies and what its reply
// must be: its type byte and, where the proxy writes such a reply itself,
// the exact bytes our encoder writes for it.
type resp3Command struct {
	args string
	typ  byte
	want []byte // nil: only the type is checked
}

// TestRedisResp3Replies sends HELLO 3 to a real redis-server and then,
// pipelined, commands whose replies are maps, sets, doubles, nulls,
// booleans, big numbers and verbatim strings. It checks that
// resp.ReadReply frames the stream into exactly one reply per command,
// of the expected type, the same whole and byte by byte, and that our
// RESP3 encoders write the very bytes Redis writes for the same reply.
func TestRedisResp3Replies(t *testing.T) {
	srv := testservers.Redis(t)
	cmds := []resp3Command{
		{"HELLO 3", '%', nil},
		{"HSET h f1 v1 f2 v2", ':', resp.AppendInt(nil, 2)},
		{"HGETALL h", '%', nil},
		{"SADD s x y z", ':', nil},
		{"SMEMBERS s", '~', nil},
		{"ZADD z 3.5 a 0.1 b 1e20 c", ':', nil},
		{"ZSCORE z a", ',', resp.AppendDouble(nil, 3.5)},
		{"ZSCORE z b", ',', resp.AppendDouble(nil, 0.1)},
		{"ZSCORE z c", ',', resp.AppendDouble(nil, 1e20)},
		{"ZSCORE z missing", '_', resp.AppendNull3(nil)},
		{"GET missing", '_', resp.AppendNull3(nil)},
		{"MGET missing h", '*', resp.AppendNull3(resp.AppendNull3(resp.AppendArray(nil, 2)))},
		{`EVAL "redis.setresp(3); return true" 0`, '#', resp.AppendBool(nil, true)},
		{`EVAL "redis.setresp(3); return false" 0`, '#', resp.AppendBool(nil, false)},
		{`EVAL "return {double=3.5}" 0`, ',', resp.AppendDouble(nil, 3.5)},
		{`EVAL "return {double=-1/0}" 0`, ',', resp.AppendDouble(nil, math.Inf(-1))},
		{`EVAL "return {big_number='123456789012345678901234567890'}" 0`, '(',
			resp.AppendBigNumber(nil, "123456789012345678901234567890")},
		{`EVAL "return {verbatim_string={format='mkd', string='# x'}}" 0`, '=',
			resp.AppendVerbatim(nil, "mkd", []byte("# x"))},
		{`EVAL "redis.setresp(3); return redis.call('HGETALL', 'h')" 0`, '%', nil},
		{"INFO server", '=', nil},
		{"CLIENT LIST", '=', nil},
	}
	var out []byte
	for _, c := range cmds {
		out = append(out, c.args+"\r\n"...)
	}
	conn := dial(t, srv.Addr)
	if _, err := conn.Write(out); err != nil {
		t.Fatal(err)
	}
	stream := readReplies(t, conn, len(cmds))
	replies := splitReplies(t, stream, len(cmds))
	for i, c := range cmds {
		r := replies[i]
		if r[0] != c.typ || c.want != nil && !bytes.Equal(r, c.want) {
			t.Errorf("%s: Redis answered %q, want type %c and %q", c.args, r, c.typ, c.want)
		}
	}
	checkMap(t, replies[2], "f1", "v1", "f2", "v2")
	checkMap(t, replies[18], "f1", "v1", "f2", "v2")
	if v, _, err := resp.ParseValue(replies[4]); err != nil || len(v.Elems) != 3 ||
		!bytes.Equal(resp.AppendSet(nil, 3), replies[4][:4]) {
		t.Errorf("SMEMBERS: %q, %v", replies[4], err)
	}
	for _, i := range []int{19, 20} { // verbatim text
		v, _, err := resp.ParseValue(replies[i])
		if err != nil || v.Kind != resp.KindVerbatim || !bytes.HasPrefix(v.Str, []byte("txt:")) ||
			!bytes.Equal(resp.AppendVerbatim(nil, "txt", v.Str[4:]), replies[i]) {
			t.Errorf("%s: %q (%v), not what AppendVerbatim writes", cmds[i].args, replies[i], err)
		}
	}
	t.Logf("%d replies, %d bytes, framed the same whole and byte by byte", len(replies), len(stream))
}

// checkMap checks that reply is a map of the given keys and values in
// some order, with the header AppendMap writes.
func checkMap(t *testing.T, reply []byte, kv ...string) {
	t.Helper()
	v, _, err := resp.ParseValue(reply)
	if err != nil || v.Kind != resp.KindMap || len(v.Elems) != len(kv) {
		t.Fatalf("%q: %v, want a map of %d pairs", reply, err, len(kv)/2)
	}
	if head := resp.AppendMap(nil, len(kv)/2); !bytes.HasPrefix(reply, head) {
		t.Errorf("%q does not start with %q", reply, head)
	}
	got := map[string]string{}
	for i := 0; i < len(v.Elems); i += 2 {
		got[string(v.Elems[i].Str)] = string(v.Elems[i+1].Str)
	}
	want := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		want[kv[i]] = kv[i+1]
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("map %v, want %v", got, want)
	}
}

// splitReplies frames stream with resp.ReadReply into exactly want
// replies, checks that nothing is left and that feeding the stream byte
// by byte frames the same, and returns the replies.
func splitReplies(t *testing.T, stream []byte, want int) [][]byte {
	t.Helper()
	var replies [][]byte
	var lengths []int
	for pos := 0; pos < len(stream); {
		n, err := resp.ReadReply(stream[pos:])
		if err != nil || n == 0 {
			t.Fatalf("reply %d: n=%d err=%v at %q", len(replies), n, err, stream[pos:])
		}
		replies, lengths = append(replies, stream[pos:pos+n]), append(lengths, n)
		pos += n
	}
	if len(replies) != want {
		t.Fatalf("%d replies in the stream, want %d", len(replies), want)
	}
	if got, err := resp.FeedReplies(stream, 1); err != nil || !reflect.DeepEqual(got, lengths) {
		t.Fatalf("byte by byte: %v, %v; all at once: %v", got, err, lengths)
	}
	return replies
}

// TestRedisResp3Push gets a real redis-server to push an invalidation
// ('>') with client-side caching, between replies, and checks that
// resp.ReadReply frames the push and keeps the replies around it in step.
func TestRedisResp3Push(t *testing.T) {
	srv := testservers.Redis(t)
	conn := dial(t, srv.Addr)
	setup := "HELLO 3\r\nSET k v1\r\nCLIENT TRACKING ON\r\nGET k\r\n"
	if _, err := conn.Write([]byte(setup)); err != nil {
		t.Fatal(err)
	}
	replies := splitReplies(t, readReplies(t, conn, 4), 4)
	if got := string(replies[3]); got != "$2\r\nv1\r\n" {
		t.Fatalf("GET k: %q", got)
	}
	// Another client changes k: Redis pushes the invalidation to conn
	// before it reads conn's next command.
	if got, err := testservers.Do(srv.Addr, "SET", "k", "v2"); err != nil || got != "+OK" {
		t.Fatalf("SET from another client: %q, %v", got, err)
	}
	if _, err := conn.Write([]byte("PING\r\nGET k\r\n")); err != nil {
		t.Fatal(err)
	}
	stream := readReplies(t, conn, 3)
	replies = splitReplies(t, stream, 3)
	push := resp.AppendBulkString(resp.AppendPush(nil, 2), "invalidate")
	push = resp.AppendBulkString(resp.AppendArray(push, 1), "k")
	want := []string{string(push), "+PONG\r\n", "$2\r\nv2\r\n"}
	for i, r := range replies {
		if string(r) != want[i] {
			t.Errorf("reply %d: %q, want %q", i, r, want[i])
		}
	}
	v, _, err := resp.ParseValue(replies[0])
	if err != nil || v.Kind != resp.KindPush || len(v.Elems) != 2 || string(v.Elems[0].Str) != "invalidate" {
		t.Fatalf("push: %+v, %v", v, err)
	}
	t.Logf("stream %q", strings.ReplaceAll(string(stream), "\r\n", " "))
}
