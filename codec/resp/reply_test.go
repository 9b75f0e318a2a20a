package resp

import (
	"strings"
	"testing"
)

// checkReplyPrefixes checks that every proper prefix of in either needs more
// bytes or gives exactly what the whole input gives.
func checkReplyPrefixes(t *testing.T, in []byte) {
	t.Helper()
	n, err := ReadReply(in)
	for k := 0; k < len(in); k = nextPrefix(k, len(in)) {
		pn, perr := ReadReply(in[:k])
		switch {
		case pn == 0 && perr == nil:
			if err == nil && n != 0 && n <= k {
				t.Fatalf("prefix %d: need more, but the whole input has a reply of %d", k, n)
			}
		case perr != nil:
			if err == nil || perr.Error() != err.Error() {
				t.Fatalf("prefix %d: error %v, whole input: n=%d err=%v", k, perr, n, err)
			}
		case pn != n:
			t.Fatalf("prefix %d: n=%d, whole input: n=%d err=%v", k, pn, n, err)
		}
	}
}

func TestReadReplyGood(t *testing.T) {
	deep := strings.Repeat("*1\r\n", MaxReplyDepth) + ":1\r\n"
	tests := []struct {
		name string
		in   string
		n    int // length of the first reply; the rest of in follows it
	}{
		{"status", "+OK\r\n", 5},
		{"error", "-ERR unknown command 'x'\r\n", 26},
		{"integer", ":-9223372036854775808\r\n", 23},
		{"bulk", "$5\r\nhello\r\n", 11},
		{"bulk with CRLF inside", "$4\r\n\r\n\r\n\r\n", 10},
		{"empty bulk", "$0\r\n\r\n", 6},
		{"null bulk", "$-1\r\n", 5},
		{"array", "*2\r\n$1\r\na\r\n:1\r\n", 15},
		{"empty array", "*0\r\n", 4},
		{"null array", "*-1\r\n", 5},
		{"nested array", "*2\r\n*2\r\n:1\r\n:2\r\n*1\r\n$-1\r\n+x\r\n", 25},
		{"resp3 null", "_\r\n", 3},
		{"double", ",3.14\r\n", 7},
		{"double inf", ",-inf\r\n", 7},
		{"boolean true", "#t\r\n", 4},
		{"boolean false", "#f\r\n", 4},
		{"blob error", "!21\r\nSYNTAX invalid syntax\r\n", 28},
		{"verbatim", "=15\r\ntxt:Some string\r\n", 22},
		{"big number", "(3492890328409238509324850943850943825024385\r\n", 46},
		{"map", "%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n", 20},
		{"empty map", "%0\r\n", 4},
		{"set", "~2\r\n+a\r\n+b\r\n", 12},
		{"push", ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n", 33},
		{"attribute before a reply", "|1\r\n+ttl\r\n:3\r\n*2\r\n:1\r\n:2\r\n", 26},
		{"empty attribute", "|0\r\n+OK\r\n", 9},
		{"attribute chain", "|1\r\n+a\r\n:1\r\n|1\r\n+b\r\n:2\r\n+OK\r\n", 29},
		{"attribute inside an array", "*2\r\n|1\r\n+a\r\n:1\r\n:7\r\n:8\r\n", 24},
		{"map of arrays", "%1\r\n*1\r\n+k\r\n*2\r\n:1\r\n:2\r\n", 24},
		{"pipelined", "+OK\r\n:1\r\n", 5},
		{"depth at the limit", deep, len(deep)},
		{"long array", "*1000\r\n" + strings.Repeat(":1\r\n", 1000), 4007},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := ReadReply([]byte(tt.in))
			if n != tt.n || err != nil {
				t.Fatalf("got n=%d err=%v, want n=%d", n, err, tt.n)
			}
			if n, err := ReadReply([]byte(tt.in[:tt.n])); n != tt.n || err != nil {
				t.Fatalf("the reply alone: n=%d err=%v", n, err)
			}
			checkReplyPrefixes(t, []byte(tt.in))
		})
	}
}

func TestReadReplyMalformed(t *testing.T) {
	tests := []struct {
		name string
		in   string
		msg  string
	}{
		{"unknown type", "xyz\r\n", "Protocol error: unknown reply type 'x'"},
		{"inline text", "OK\r\n", "Protocol error: unknown reply type 'O'"},
		{"status with LF only", "+OK\n+OK\r\n", msgInvalidLine},
		{"status with LF only at the end", "+OK\n", msgInvalidLine},
		{"status CR without LF", "+OK\rX", msgInvalidLine},
		{"integer not a number", ":abc\r\n", msgInvalidInteger},
		{"integer empty", ":\r\n", msgInvalidInteger},
		{"integer overflow", ":9223372036854775808\r\n", msgInvalidInteger},
		{"integer too long", ":" + strings.Repeat("1", 40), msgInvalidInteger},
		{"bulk negative length", "$-2\r\n", msgInvalidLength},
		{"bulk length not a number", "$x\r\n", msgInvalidLength},
		{"bulk missing CRLF", "$3\r\nabcde", msgBulkTerminator},
		{"blob error null", "!-1\r\n", msgInvalidLength},
		{"verbatim null", "=-1\r\n", msgInvalidLength},
		{"array negative count", "*-2\r\n", msgInvalidLength},
		{"array count too big", "*4294967296\r\n", msgInvalidLength},
		{"map null", "%-1\r\n", msgInvalidLength},
		{"set null", "~-1\r\n", msgInvalidLength},
		{"bad element in array", "*2\r\n:1\r\nfoo\r\n", "Protocol error: unknown reply type 'f'"},
		{"null with text", "_x\r\n", msgInvalidLine},
		{"boolean other", "#x\r\n", msgInvalidLine},
		{"boolean long", "#tt\r\n", msgInvalidLine},
		{"too deep", strings.Repeat("*1\r\n", MaxReplyDepth+1) + ":1\r\n", msgReplyTooDeep},
		{"too deep maps", strings.Repeat("%1\r\n+k\r\n", MaxReplyDepth+1) + ":1\r\n", msgReplyTooDeep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := ReadReply([]byte(tt.in))
			e, ok := err.(*Error)
			if n != 0 || !ok || e.Msg != tt.msg {
				t.Fatalf("got n=%d err=%v, want *Error %q", n, err, tt.msg)
			}
			checkReplyPrefixes(t, []byte(tt.in))
		})
	}
}

func TestReadReplyMillionNestedArrays(t *testing.T) {
	in := []byte(strings.Repeat("*1\r\n", 1_000_000))
	if n, err := ReadReply(in); n != 0 || err == nil || err.Error() != msgReplyTooDeep {
		t.Fatalf("n=%d err=%v, want %q", n, err, msgReplyTooDeep)
	}
}

func TestReadArrayHeader(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		count int
		n     int
		err   string
	}{
		{"array", "*3\r\n$1\r\na\r\n", 3, 4, ""},
		{"empty", "*0\r\n", 0, 4, ""},
		{"null", "*-1\r\n", -1, 5, ""},
		{"incomplete", "*12", 0, 0, ""},
		{"nothing", "", 0, 0, ""},
		{"not an array", "$3\r\nabc\r\n", 0, 0, "Protocol error: expected '*', got '$'"},
		{"bad count", "*-2\r\n", 0, 0, msgInvalidLength},
		{"garbage count", "*x\r\n", 0, 0, msgInvalidLength},
		{"streamed", "*?\r\n:1\r\n.\r\n", 0, 0, msgInvalidLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			count, n, err := ReadArrayHeader([]byte(tt.in))
			if count != tt.count || n != tt.n || errText(err) != tt.err {
				t.Fatalf("got %d, %d, %v; want %d, %d, %q", count, n, err, tt.count, tt.n, tt.err)
			}
		})
	}
}

func TestReadInteger(t *testing.T) {
	tests := []struct {
		name string
		in   string
		v    int64
		n    int
		err  string
	}{
		{"positive", ":42\r\n", 42, 5, ""},
		{"negative", ":-1\r\n+OK\r\n", -1, 5, ""},
		{"incomplete", ":42\r", 0, 0, ""},
		{"nothing", "", 0, 0, ""},
		{"error reply", "-ERR x\r\n", 0, 0, "Protocol error: expected ':', got '-'"},
		{"not a number", ":4x\r\n", 0, 0, msgInvalidInteger},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, n, err := ReadInteger([]byte(tt.in))
			if v != tt.v || n != tt.n || errText(err) != tt.err {
				t.Fatalf("got %d, %d, %v; want %d, %d, %q", v, n, err, tt.v, tt.n, tt.err)
			}
		})
	}
}

func TestReadBulkString(t *testing.T) {
	tests := []struct {
		name string
		in   string
		val  string
		null bool
		n    int
		err  string
	}{
		{"value", "$5\r\nslave\r\n", "slave", false, 11, ""},
		{"empty", "$0\r\n\r\n:1\r\n", "", false, 6, ""},
		{"null", "$-1\r\n", "", true, 5, ""},
		{"incomplete payload", "$5\r\nsla", "", true, 0, ""},
		{"incomplete header", "$5", "", true, 0, ""},
		{"nothing", "", "", true, 0, ""},
		{"integer", ":1\r\n", "", true, 0, "Protocol error: expected '$', got ':'"},
		{"bad terminator", "$2\r\nabcd", "", true, 0, msgBulkTerminator},
		{"bad length", "$x\r\n", "", true, 0, msgInvalidLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			val, n, err := ReadBulkString([]byte(tt.in))
			if string(val) != tt.val || (val == nil) != tt.null || n != tt.n || errText(err) != tt.err {
				t.Fatalf("got %q (nil %v), %d, %v; want %q (nil %v), %d, %q", val, val == nil, n, err, tt.val, tt.null, tt.n, tt.err)
			}
		})
	}
}

func TestIsError(t *testing.T) {
	tests := []struct {
		name  string
		reply string
		want  bool
	}{
		{"error", "-ERR x\r\n", true},
		{"blob error", "!3\r\nERR\r\n", true},
		{"status", "+OK\r\n", false},
		{"bulk starting with a minus", "$2\r\n-x\r\n", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsError([]byte(tt.reply)); got != tt.want {
				t.Fatalf("IsError(%q) = %v", tt.reply, got)
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
