package sentinel

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/shardproxy/shardproxy/codec/resp"
)

// reader reads in from a Reader as conn does, a byte at a time.
func reader(in string) *resp.Reader {
	return resp.NewReader(iotest.OneByteReader(strings.NewReader(in)), maxReply)
}

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
			r := reader(tc.in + "+next\r\n")
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
	deep := strings.Repeat("*1\r\n", resp.MaxReplyDepth+1) + ":1\r\n"
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
		{"RESP3 null in array", "*1\r\n_\r\n", errProtocol},
		{"RESP3 attribute", "|1\r\n+a\r\n+b\r\n+OK\r\n", errProtocol},
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readReply(reader(tc.in))
			if !errors.Is(err, tc.want) {
				t.Fatalf("readReply(%.40q) = %#v, %v; want error %v", tc.in, got, err, tc.want)
			}
		})
	}
}

// TestReadReplyTooLarge checks that a reply longer than maxReply is a
// protocol error, found before it is all buffered.
func TestReadReplyTooLarge(t *testing.T) {
	in := "+" + strings.Repeat("x", maxReply) + "\r\n"
	if got, err := readReply(resp.NewReader(strings.NewReader(in), maxReply)); !errors.Is(err, errProtocol) {
		t.Fatalf("a line of %d bytes: %.40q, %v; want errProtocol", len(in), got, err)
	}
}
