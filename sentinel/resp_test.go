package sentinel

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestReadReply(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want any
	}{
		{"simple string", "+OK\r\n", "OK"},
		{"empty simple string", "+\r\n", ""},
		{"error", "-ERR No such master with that name\r\n", replyError("ERR No such master with that name")},
		{"integer", ":42\r\n", int64(42)},
		{"negative integer", ":-7\r\n", int64(-7)},
		{"bulk", "$5\r\nhello\r\n", "hello"},
		{"bulk with CRLF inside", "$4\r\na\r\nb\r\n", "a\r\nb"},
		{"empty bulk", "$0\r\n\r\n", ""},
		{"null bulk", "$-1\r\n", nil},
		{"null array", "*-1\r\n", nil},
		{"empty array", "*0\r\n", []any{}},
		{"master address", "*2\r\n$9\r\n127.0.0.1\r\n$4\r\n6379\r\n", []any{"127.0.0.1", "6379"}},
		{"message", "*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n$5\r\nm a b\r\n",
			[]any{"message", "+switch-master", "m a b"}},
		{"nested", "*2\r\n*1\r\n:1\r\n*0\r\n", []any{[]any{int64(1)}, []any{}}},
		{"null in array", "*2\r\n$-1\r\n-E\r\n", []any{nil, replyError("E")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := bufio.NewReader(strings.NewReader(tc.in + "+next\r\n"))
			got, err := readReply(r)
			if err != nil {
				t.Fatalf("readReply(%q): %v", tc.in, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("readReply(%q) = %#v, want %#v", tc.in, got, tc.want)
			}
			if next, err := readReply(r); next != "next" || err != nil {
				t.Fatalf("reply after %q: %#v, %v; want the next reply, in step", tc.in, next, err)
			}
		})
	}
}

func TestReadReplyMalformed(t *testing.T) {
	deep := strings.Repeat("*1\r\n", maxDepth+1) + ":1\r\n"
	for _, tc := range []struct {
		name string
		in   string
		want error // errProtocol, io.EOF or io.ErrUnexpectedEOF
	}{
		{"nothing", "", io.EOF},
		{"empty line", "\r\n", errProtocol},
		{"LF only", "+OK\n", errProtocol},
		{"unknown type", "?x\r\n", errProtocol},
		{"RESP3 map", "%1\r\n+a\r\n+b\r\n", errProtocol},
		{"bad integer", ":4x\r\n", errProtocol},
		{"bad bulk length", "$x\r\n", errProtocol},
		{"bulk length below -1", "$-2\r\n", errProtocol},
		{"bulk too long", "$99999999999\r\n", errProtocol},
		{"array too long", "*99999999999\r\n", errProtocol},
		{"bulk without CRLF", "$2\r\nabcd\r\n", errProtocol},
		{"too deep", deep, errProtocol},
		{"line cut", "+OK", io.ErrUnexpectedEOF},
		{"bulk cut", "$5\r\nhel", io.ErrUnexpectedEOF},
		{"bulk CRLF cut", "$5\r\nhello\r", io.ErrUnexpectedEOF},
		{"array cut", "*2\r\n:1\r\n", io.ErrUnexpectedEOF},
		{"line too long", "+" + strings.Repeat("x", 5000) + "\r\n", errProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readReply(bufio.NewReader(strings.NewReader(tc.in)))
			if !errors.Is(err, tc.want) {
				t.Fatalf("readReply(%.40q) = %#v, %v; want error %v", tc.in, got, err, tc.want)
			}
		})
	}
}

// FuzzReadReply checks that readReply never panics, and that what it reads
// reads again the same once written back.
func FuzzReadReply(f *testing.F) {
	for _, s := range []string{"+OK\r\n", "-ERR x\r\n", ":1\r\n", "$3\r\nabc\r\n", "$-1\r\n",
		"*2\r\n$1\r\na\r\n*1\r\n:2\r\n", "*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n$0\r\n\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := readReply(bufio.NewReader(strings.NewReader(string(in))))
		if err != nil {
			return
		}
		out := appendValue(nil, v)
		again, err := readReply(bufio.NewReader(strings.NewReader(string(out))))
		if err != nil || !reflect.DeepEqual(again, v) {
			t.Fatalf("%q read as %#v, written as %q, read again as %#v, %v", in, v, out, again, err)
		}
	})
}

// appendValue writes v, as readReply returns it, in RESP2 (strings as bulk
// strings).
func appendValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "$-1\r\n"...)
	case replyError:
		return append(append(append(b, '-'), v...), "\r\n"...)
	case int64:
		return append(strconv.AppendInt(append(b, ':'), v, 10), "\r\n"...)
	case string:
		b = strconv.AppendInt(append(b, '$'), int64(len(v)), 10)
		return append(append(append(b, "\r\n"...), v...), "\r\n"...)
	case []any:
		b = append(strconv.AppendInt(append(b, '*'), int64(len(v)), 10), "\r\n"...)
		for _, e := range v {
			b = appendValue(b, e)
		}
		return b
	}
	panic(fmt.Sprintf("unexpected value %#v", v))
}
