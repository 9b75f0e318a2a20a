package resp

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// str, integer, null and aggregate build expected values.
func str(k Kind, s string) Value { return Value{Kind: k, Str: []byte(s)} }
func integer(n int64) Value      { return Value{Kind: KindInteger, Int: n} }
func null(k Kind) Value          { return Value{Kind: k, Null: true} }
func aggregate(k Kind, elems ...Value) Value {
	if elems == nil {
		elems = []Value{}
	}
	return Value{Kind: k, Elems: elems}
}

func TestParseValueGood(t *testing.T) {
	deep := strings.Repeat("*1\r\n", MaxReplyDepth) + ":1\r\n"
	deepWant := integer(1)
	for range MaxReplyDepth {
		deepWant = aggregate(KindArray, deepWant)
	}
	tests := []struct {
		name string
		in   string
		want Value
	}{
		{"status", "+OK\r\n", str(KindSimple, "OK")},
		{"empty status", "+\r\n", str(KindSimple, "")},
		{"error", "-ERR unknown command\r\n", str(KindError, "ERR unknown command")},
		{"integer", ":-9223372036854775808\r\n", integer(-1 << 63)},
		{"bulk", "$5\r\nhello\r\n", str(KindBulk, "hello")},
		{"bulk with CRLF inside", "$4\r\na\r\nb\r\n", str(KindBulk, "a\r\nb")},
		{"empty bulk", "$0\r\n\r\n", str(KindBulk, "")},
		{"null bulk", "$-1\r\n", null(KindBulk)},
		{"array", "*2\r\n$1\r\na\r\n:1\r\n", aggregate(KindArray, str(KindBulk, "a"), integer(1))},
		{"empty array", "*0\r\n", aggregate(KindArray)},
		{"null array", "*-1\r\n", null(KindArray)},
		{"nested", "*2\r\n*1\r\n:1\r\n*0\r\n", aggregate(KindArray, aggregate(KindArray, integer(1)), aggregate(KindArray))},
		{"null and error in array", "*2\r\n$-1\r\n-E\r\n", aggregate(KindArray, null(KindBulk), str(KindError, "E"))},
		{"resp3 null", "_\r\n", null(KindNull)},
		{"double", ",-inf\r\n", str(KindDouble, "-inf")},
		{"boolean true", "#t\r\n", Value{Kind: KindBoolean, Int: 1}},
		{"boolean false", "#f\r\n", Value{Kind: KindBoolean}},
		{"blob error", "!6\r\nERR x\n\r\n", str(KindBlobError, "ERR x\n")},
		{"verbatim", "=7\r\ntxt:abc\r\n", str(KindVerbatim, "txt:abc")},
		{"big number", "(-12345678901234567890\r\n", str(KindBigNumber, "-12345678901234567890")},
		{"map", "%2\r\n+a\r\n:1\r\n+b\r\n_\r\n",
			aggregate(KindMap, str(KindSimple, "a"), integer(1), str(KindSimple, "b"), null(KindNull))},
		{"set", "~1\r\n+a\r\n", aggregate(KindSet, str(KindSimple, "a"))},
		{"push", ">2\r\n$7\r\nmessage\r\n$2\r\nhi\r\n", aggregate(KindPush, str(KindBulk, "message"), str(KindBulk, "hi"))},
		{"attribute", "|1\r\n+ttl\r\n:3\r\n+OK\r\n",
			Value{Kind: KindSimple, Str: []byte("OK"), Attrs: []Value{str(KindSimple, "ttl"), integer(3)}}},
		{"two attributes", "|1\r\n+a\r\n:1\r\n|1\r\n+b\r\n:2\r\n:7\r\n",
			Value{Kind: KindInteger, Int: 7, Attrs: []Value{str(KindSimple, "a"), integer(1), str(KindSimple, "b"), integer(2)}}},
		{"attribute inside an array", "*2\r\n|1\r\n+a\r\n:1\r\n+x\r\n+y\r\n", aggregate(KindArray,
			Value{Kind: KindSimple, Str: []byte("x"), Attrs: []Value{str(KindSimple, "a"), integer(1)}}, str(KindSimple, "y"))},
		{"deepest", deep, deepWant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in + "+next\r\n")
			v, n, err := ParseValue(in)
			if err != nil || n != len(tt.in) {
				t.Fatalf("n=%d err=%v, want n=%d", n, err, len(tt.in))
			}
			if !reflect.DeepEqual(v, tt.want) {
				t.Fatalf("got %s, want %s", show(v), show(tt.want))
			}
			for k := range len(tt.in) {
				if v, n, err := ParseValue(in[:k]); n != 0 || err != nil || v.Kind != 0 {
					t.Fatalf("prefix %d: %s, n=%d err=%v; want incomplete", k, show(v), n, err)
				}
			}
		})
	}
}

func TestParseValueMalformed(t *testing.T) {
	tests := []struct {
		name string
		in   string
		msg  string
	}{
		{"unknown type", "?x\r\n", "Protocol error: unknown reply type '?'"},
		{"empty line", "\r\n", "Protocol error: unknown reply type '\r'"},
		{"LF only", "+OK\n", msgInvalidLine},
		{"bad integer", ":4x\r\n", msgInvalidInteger},
		{"bad bulk length", "$x\r\n", msgInvalidLength},
		{"bulk length below -1", "$-2\r\n", msgInvalidLength},
		{"bulk without CRLF", "$2\r\nabcd\r\n", msgBulkTerminator},
		{"array count too big", "*99999999999\r\n", msgInvalidLength},
		{"bad element", "*2\r\n:1\r\nx\r\n", "Protocol error: unknown reply type 'x'"},
		{"null map", "%-1\r\n", msgInvalidLength},
		{"too deep", strings.Repeat("*1\r\n", MaxReplyDepth+1) + ":1\r\n", msgReplyTooDeep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, n, err := ParseValue([]byte(tt.in))
			var e *Error
			if n != 0 || !errors.As(err, &e) || e.Msg != tt.msg || v.Kind != 0 {
				t.Fatalf("got %s n=%d err=%v, want *Error %q", show(v), n, err, tt.msg)
			}
		})
	}
}

func TestParseValueIncomplete(t *testing.T) {
	for _, in := range []string{"", "+OK", "+OK\r", "$5\r\nhel", "$5\r\nhello\r", "*2\r\n:1\r\n",
		"%1\r\n+a\r\n", "|1\r\n+a\r\n:1\r\n", "$99999999999\r\n"} {
		if v, n, err := ParseValue([]byte(in)); n != 0 || err != nil || v.Kind != 0 {
			t.Errorf("%q: %s n=%d err=%v; want incomplete", in, show(v), n, err)
		}
	}
}

func TestValueAccessors(t *testing.T) {
	parse := func(s string) Value {
		v, _, err := ParseValue([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if b, ok := parse("$3\r\nabc\r\n").Bulk(); !ok || string(b) != "abc" {
		t.Errorf("Bulk of a bulk: %q %t", b, ok)
	}
	for _, in := range []string{"$-1\r\n", "+abc\r\n", ":1\r\n", "=7\r\ntxt:abc\r\n"} {
		if b, ok := parse(in).Bulk(); ok {
			t.Errorf("Bulk of %q: %q, want none", in, b)
		}
	}
	if n, ok := parse(":-7\r\n").Integer(); !ok || n != -7 {
		t.Errorf("Integer of an integer: %d %t", n, ok)
	}
	if n, ok := parse("#t\r\n").Integer(); ok {
		t.Errorf("Integer of a boolean: %d, want none", n)
	}
	for in, want := range map[string]bool{"-ERR x\r\n": true, "!1\r\nx\r\n": true, "+ERR\r\n": false, "$1\r\n-\r\n": false} {
		if got := parse(in).IsError(); got != want {
			t.Errorf("IsError(%q) = %t", in, got)
		}
	}
}

func TestParseScan(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		cursor string
		keys   []string
	}{
		{"keys", "*2\r\n$2\r\n17\r\n*2\r\n$1\r\na\r\n$3\r\nb\nc\r\n", "17", []string{"a", "b\nc"}},
		{"last", "*2\r\n$1\r\n0\r\n*0\r\n", "0", []string{}},
		{"null keys", "*2\r\n$1\r\n0\r\n*-1\r\n", "0", []string{}},
		{"error", "-ERR no\r\n", "", nil},
		{"not an array", "+OK\r\n", "", nil},
		{"one element", "*1\r\n$1\r\n0\r\n", "", nil},
		{"cursor not bulk", "*2\r\n:0\r\n*0\r\n", "", nil},
		{"keys not an array", "*2\r\n$1\r\n0\r\n$1\r\na\r\n", "", nil},
		{"a null key", "*2\r\n$1\r\n0\r\n*1\r\n$-1\r\n", "", nil},
		{"an integer key", "*2\r\n$1\r\n0\r\n*1\r\n:1\r\n", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, _, err := ParseValue([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			cursor, keys, err := ParseScan(v)
			if tt.keys == nil {
				if !errors.Is(err, ErrNotScan) {
					t.Fatalf("got %q %q %v, want ErrNotScan", cursor, keys, err)
				}
				return
			}
			got := argStrings(keys)
			if err != nil || string(cursor) != tt.cursor || len(got) != len(tt.keys) ||
				len(got) > 0 && !reflect.DeepEqual(got, tt.keys) {
				t.Fatalf("got %q %q %v, want %q %q", cursor, got, err, tt.cursor, tt.keys)
			}
		})
	}
}

// show formats a value for a failure message.
func show(v Value) string {
	s := string(v.Kind)
	switch {
	case v.Null:
		s += "null"
	case v.Elems != nil:
		s += "["
		for i, e := range v.Elems {
			if i > 0 {
				s += " "
			}
			s += show(e)
		}
		s += "]"
	case v.Kind == KindInteger || v.Kind == KindBoolean:
		s += string(AppendInt(nil, v.Int))
	default:
		s += string(v.Str)
	}
	if v.Attrs != nil {
		s += "|" + show(Value{Elems: v.Attrs})
	}
	return s
}
