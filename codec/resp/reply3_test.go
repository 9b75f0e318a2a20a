package resp

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// resp3Replies are valid RESP3 replies, each with the Value ParseValue
// makes of it: streamed strings and aggregates, attributes, pushes and
// nesting of every aggregate in every other.
var resp3Replies = []struct {
	name  string
	reply string
	want  Value
}{
	{"streamed string", "$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;2\r\nld\r\n;0\r\n", str(KindBulk, "Hello world")},
	{"streamed string of no chunk", "$?\r\n;0\r\n", str(KindBulk, "")},
	{"streamed string with CRLF and ; inside", "$?\r\n;3\r\n\r\n;\r\n;2\r\n.\n\r\n;0\r\n", str(KindBulk, "\r\n;.\n")},
	{"streamed array", "*?\r\n:1\r\n:2\r\n:3\r\n.\r\n", aggregate(KindArray, integer(1), integer(2), integer(3))},
	{"empty streamed array", "*?\r\n.\r\n", aggregate(KindArray)},
	{"streamed set", "~?\r\n+a\r\n#t\r\n.\r\n", aggregate(KindSet, str(KindSimple, "a"), Value{Kind: KindBoolean, Int: 1})},
	{"streamed map", "%?\r\n+a\r\n:1\r\n+b\r\n:2\r\n.\r\n",
		aggregate(KindMap, str(KindSimple, "a"), integer(1), str(KindSimple, "b"), integer(2))},
	{"empty streamed map", "%?\r\n.\r\n", aggregate(KindMap)},
	{"streamed in streamed", "*?\r\n*?\r\n:1\r\n.\r\n%?\r\n.\r\n.\r\n",
		aggregate(KindArray, aggregate(KindArray, integer(1)), aggregate(KindMap))},
	{"streamed string in a streamed map", "%?\r\n$?\r\n;1\r\nk\r\n;0\r\n$?\r\n;0\r\n.\r\n",
		aggregate(KindMap, str(KindBulk, "k"), str(KindBulk, ""))},
	{"counted in streamed", "*?\r\n*2\r\n:1\r\n*0\r\n.\r\n",
		aggregate(KindArray, aggregate(KindArray, integer(1), aggregate(KindArray)))},
	{"streamed in counted", "*2\r\n~?\r\n_\r\n.\r\n:9\r\n", aggregate(KindArray, aggregate(KindSet, null(KindNull)), integer(9))},
	{"streamed map of counted maps", "%?\r\n%1\r\n+a\r\n:1\r\n%0\r\n.\r\n",
		aggregate(KindMap, aggregate(KindMap, str(KindSimple, "a"), integer(1)), aggregate(KindMap))},
	{"attribute before a streamed array", "|1\r\n+ttl\r\n:3\r\n*?\r\n:1\r\n.\r\n",
		Value{Kind: KindArray, Elems: []Value{integer(1)}, Attrs: []Value{str(KindSimple, "ttl"), integer(3)}}},
	{"attribute inside a streamed map", "%?\r\n|1\r\n+a\r\n:1\r\n+k\r\n:2\r\n.\r\n", aggregate(KindMap,
		Value{Kind: KindSimple, Str: []byte("k"), Attrs: []Value{str(KindSimple, "a"), integer(1)}}, integer(2))},
	{"attribute of a streamed value", "|1\r\n%?\r\n+k\r\n+v\r\n.\r\n~?\r\n.\r\n$?\r\n;1\r\nx\r\n;0\r\n",
		Value{Kind: KindBulk, Str: []byte("x"), Attrs: []Value{
			aggregate(KindMap, str(KindSimple, "k"), str(KindSimple, "v")), aggregate(KindSet)}}},
	{"push invalidate", ">2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nkey\r\n",
		aggregate(KindPush, str(KindBulk, "invalidate"), aggregate(KindArray, str(KindBulk, "key")))},
	{"push of every type", ">9\r\n$3\r\nmsg\r\n,1.5\r\n(123456789012345678901234567890\r\n=7\r\ntxt:abc\r\n!1\r\nE\r\n#f\r\n_\r\n%1\r\n:1\r\n~0\r\n|0\r\n+x\r\n",
		aggregate(KindPush, str(KindBulk, "msg"), str(KindDouble, "1.5"), str(KindBigNumber, "123456789012345678901234567890"),
			str(KindVerbatim, "txt:abc"), str(KindBlobError, "E"), Value{Kind: KindBoolean}, null(KindNull),
			aggregate(KindMap, integer(1), aggregate(KindSet)), Value{Kind: KindSimple, Str: []byte("x"), Attrs: []Value{}})},
	{"map with aggregate keys", "%2\r\n*1\r\n:1\r\n~1\r\n:2\r\n%1\r\n_\r\n_\r\n#t\r\n", aggregate(KindMap,
		aggregate(KindArray, integer(1)), aggregate(KindSet, integer(2)), aggregate(KindMap, null(KindNull), null(KindNull)),
		Value{Kind: KindBoolean, Int: 1})},
	{"deep streamed", strings.Repeat("*?\r\n", MaxReplyDepth) + strings.Repeat(".\r\n", MaxReplyDepth), deepStreamed(MaxReplyDepth)},
	{"deep streamed maps", strings.Repeat("%?\r\n+k\r\n", 40) + "_\r\n" + strings.Repeat(".\r\n", 40), deepStreamedMaps(40)},
	{"just past the small stack", strings.Repeat("~?\r\n", shallowDepth+1) + strings.Repeat(".\r\n", shallowDepth+1),
		deepSet(shallowDepth + 1)},
}

// deepStreamed is n streamed arrays, each the only element of the one
// around it.
func deepStreamed(n int) Value {
	v := aggregate(KindArray)
	for range n - 1 {
		v = aggregate(KindArray, v)
	}
	return v
}

// deepSet is n sets, each the only element of the one around it.
func deepSet(n int) Value {
	v := aggregate(KindSet)
	for range n - 1 {
		v = aggregate(KindSet, v)
	}
	return v
}

// deepStreamedMaps is n maps, each the value of key "k" in the one
// around it, with a null innermost.
func deepStreamedMaps(n int) Value {
	v := null(KindNull)
	for range n {
		v = aggregate(KindMap, str(KindSimple, "k"), v)
	}
	return v
}

func TestReadReplyResp3Good(t *testing.T) {
	for _, tt := range resp3Replies {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.reply + "+next\r\n")
			if n, err := ReadReply(in); n != len(tt.reply) || err != nil {
				t.Fatalf("got n=%d err=%v, want n=%d", n, err, len(tt.reply))
			}
			if n, err := ReadReply(in[:len(tt.reply)]); n != len(tt.reply) || err != nil {
				t.Fatalf("the reply alone: n=%d err=%v", n, err)
			}
			checkReplyPrefixes(t, in)
			v, n, err := ParseValue(in)
			if n != len(tt.reply) || err != nil || !reflect.DeepEqual(v, tt.want) {
				t.Fatalf("ParseValue: %s n=%d err=%v, want %s", show(v), n, err, show(tt.want))
			}
			if got, err := feedReplies(in, 1); err != nil || !reflect.DeepEqual(got, []int{len(tt.reply), 7}) {
				t.Fatalf("byte by byte: %v, %v", got, err)
			}
		})
	}
}

func TestReadReplyResp3Malformed(t *testing.T) {
	tooDeep := strings.Repeat("*?\r\n", MaxReplyDepth+1)
	tests := []struct {
		name string
		in   string
		msg  string
	}{
		{"chunk not a chunk", "$?\r\n+x\r\n", "Protocol error: expected ';', got '+'"},
		{"chunk length not a number", "$?\r\n;x\r\nabc\r\n;0\r\n", msgInvalidLength},
		{"chunk length negative", "$?\r\n;-1\r\n", msgInvalidLength},
		{"chunk length with a leading zero", "$?\r\n;01\r\nx\r\n;0\r\n", msgInvalidLength},
		{"chunk shorter than told", "$?\r\n;4\r\nabc\r\n;0\r\n", msgBulkTerminator},
		{"chunk longer than told", "$?\r\n;2\r\nabc\r\n;0\r\n", msgBulkTerminator},
		{"streamed header with text", "$?x\r\n;0\r\n", msgInvalidLength},
		{"streamed header LF only", "$?\n;0\r\n", msgInvalidLength},
		{"streamed blob error", "!?\r\n;1\r\nE\r\n;0\r\n", msgInvalidLength},
		{"streamed verbatim", "=?\r\n;0\r\n", msgInvalidLength},
		{"streamed push", ">?\r\n+a\r\n.\r\n", msgInvalidLength},
		{"streamed attribute", "|?\r\n.\r\n+OK\r\n", msgInvalidLength},
		{"streamed aggregate header with text", "*?1\r\n.\r\n", msgInvalidLength},
		{"end alone", ".\r\n", msgUnexpectedEnd},
		{"end in a counted array", "*2\r\n:1\r\n.\r\n", msgUnexpectedEnd},
		{"end in a counted map", "%1\r\n+k\r\n.\r\n", msgUnexpectedEnd},
		{"end after a key", "%?\r\n+a\r\n:1\r\n+b\r\n.\r\n", msgUnexpectedEnd},
		{"end of a streamed array in an attribute", "*?\r\n|1\r\n+a\r\n.\r\n", msgUnexpectedEnd},
		{"end with text", "*?\r\n.x\r\n", msgInvalidLine},
		{"chunk outside a streamed string", ";4\r\nabcd\r\n", "Protocol error: unknown reply type ';'"},
		{"bad element in a streamed array", "*?\r\n:x\r\n.\r\n", msgInvalidInteger},
		{"too deep streamed", tooDeep + ":1\r\n", msgReplyTooDeep},
		{"too deep mixed", strings.Repeat("*1\r\n%?\r\n+k\r\n", MaxReplyDepth/2) + "~?\r\n", msgReplyTooDeep},
		{"null map", "%-1\r\n", msgInvalidLength},
		{"map count too big", "%2147483648\r\n", msgInvalidLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := ReadReply([]byte(tt.in))
			var e *Error
			if n != 0 || !errors.As(err, &e) || e.Msg != tt.msg {
				t.Fatalf("got n=%d err=%v, want *Error %q", n, err, tt.msg)
			}
			checkReplyPrefixes(t, []byte(tt.in))
			if v, n, perr := ParseValue([]byte(tt.in)); n != 0 || errText(perr) != tt.msg || v.Kind != 0 {
				t.Fatalf("ParseValue: %s n=%d err=%v", show(v), n, perr)
			}
		})
	}
}

func TestReadReplyResp3Incomplete(t *testing.T) {
	for _, in := range []string{"$?", "$?\r", "$?\r\n", "$?\r\n;", "$?\r\n;3\r\nab", "$?\r\n;3\r\nabc\r\n",
		"$?\r\n;0\r", "*?\r\n", "*?\r\n:1\r\n", "*?\r\n:1\r\n.", "*?\r\n:1\r\n.\r", "%?\r\n+k\r\n:1\r\n",
		"*2\r\n*?\r\n.\r\n", "|1\r\n+a\r\n:1\r\n*?\r\n"} {
		if n, err := ReadReply([]byte(in)); n != 0 || err != nil {
			t.Errorf("%q: n=%d err=%v; want incomplete", in, n, err)
		}
	}
}

// TestReadBulkStringStreamed: a streamed string is not read as a bulk
// string whose payload would alias b.
func TestReadBulkStringStreamed(t *testing.T) {
	if v, n, err := ReadBulkString([]byte("$?\r\n;1\r\nx\r\n;0\r\n")); n != 0 || errText(err) != msgStreamedString || v != nil {
		t.Fatalf("got %q, %d, %v", v, n, err)
	}
}

// TestReaderResp3: a Reader decodes streamed replies arriving a byte at a
// time, and refuses a streamed string or aggregate longer than its limit.
func TestReaderResp3(t *testing.T) {
	var in []byte
	for _, tt := range resp3Replies {
		in = append(in, tt.reply...)
	}
	r := NewReader(&chunkReader{in: in, chunk: 1}, len(in))
	for _, tt := range resp3Replies {
		if v, err := r.ReadValue(); err != nil || !reflect.DeepEqual(v, tt.want) {
			t.Fatalf("%s: %s, %v; want %s", tt.name, show(v), err, show(tt.want))
		}
	}
	for _, in := range []string{"$?\r\n" + strings.Repeat(";1\r\nx\r\n", 20) + ";0\r\n", "*?\r\n" + strings.Repeat(":1\r\n", 30) + ".\r\n"} {
		r := NewReader(strings.NewReader(in), 64)
		if v, err := r.ReadValue(); errText(err) != msgReplyTooLarge {
			t.Errorf("%d bytes, limit 64: %s, %v; want %q", len(in), show(v), err, msgReplyTooLarge)
		}
	}
}
