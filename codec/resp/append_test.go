package resp

import (
	"math"
	"testing"
)

func TestAppend(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"error", AppendError([]byte("x"), "ERR bad"), "x-ERR bad\r\n"},
		{"error with newlines", AppendError(nil, "ERR a\r\nb\nc"), "-ERR a  b c\r\n"},
		{"status", AppendStatus(nil, "OK"), "+OK\r\n"},
		{"status with newline", AppendStatus(nil, "O\nK"), "+O K\r\n"},
		{"int", AppendInt(nil, -12345), ":-12345\r\n"},
		{"int zero", AppendInt(nil, 0), ":0\r\n"},
		{"bulk", AppendBulk(nil, []byte("a\r\nb")), "$4\r\na\r\nb\r\n"},
		{"empty bulk", AppendBulk(nil, nil), "$0\r\n\r\n"},
		{"bulk string", AppendBulkString(nil, "hello"), "$5\r\nhello\r\n"},
		{"null", AppendNull(nil), "$-1\r\n"},
		{"array", AppendArray(nil, 12), "*12\r\n"},
		{"command", AppendCommand(nil, []byte("SET"), []byte("k"), []byte("")),
			"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"},
		{"empty command", AppendCommand([]byte("+"), nil...), "+*0\r\n"},
		{"resp3 null", AppendNull3([]byte("x")), "x_\r\n"},
		{"map", AppendMap(nil, 3), "%3\r\n"},
		{"empty map", AppendMap(nil, 0), "%0\r\n"},
		{"set", AppendSet(nil, 12), "~12\r\n"},
		{"push", AppendPush(nil, 2), ">2\r\n"},
		{"true", AppendBool(nil, true), "#t\r\n"},
		{"false", AppendBool(nil, false), "#f\r\n"},
		{"double", AppendDouble(nil, 3.5), ",3.5\r\n"},
		{"double integral", AppendDouble(nil, 10), ",10\r\n"},
		{"double 0.1", AppendDouble(nil, 0.1), ",0.10000000000000001\r\n"},
		{"double negative zero", AppendDouble(nil, math.Copysign(0, -1)), ",-0\r\n"},
		{"double large", AppendDouble(nil, 1e17), ",1e+17\r\n"},
		{"double below 1e17", AppendDouble(nil, 12345678901234567), ",12345678901234568\r\n"},
		{"double small", AppendDouble(nil, 0.00001), ",1.0000000000000001e-05\r\n"},
		{"double 1e-4", AppendDouble(nil, 0.0001), ",0.0001\r\n"},
		{"double max", AppendDouble(nil, math.MaxFloat64), ",1.7976931348623157e+308\r\n"},
		{"double inf", AppendDouble(nil, math.Inf(1)), ",inf\r\n"},
		{"double -inf", AppendDouble(nil, math.Inf(-1)), ",-inf\r\n"},
		{"double nan", AppendDouble(nil, math.NaN()), ",nan\r\n"},
		{"big number", AppendBigNumber(nil, "-123456789012345678901234567890"), "(-123456789012345678901234567890\r\n"},
		{"big number with newlines", AppendBigNumber(nil, "1\r\n2"), "(1  2\r\n"},
		{"verbatim", AppendVerbatim(nil, "txt", []byte("Some string")), "=15\r\ntxt:Some string\r\n"},
		{"verbatim with CRLF", AppendVerbatim(nil, "mkd", []byte("# a\r\n")), "=9\r\nmkd:# a\r\n\r\n"},
		{"empty verbatim", AppendVerbatim(nil, "txt", nil), "=4\r\ntxt:\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.got) != tt.want {
				t.Fatalf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

// TestAppendedRepliesFrame checks that what the encoders write is framed
// back by ReadReply, and integers read back by ReadInteger.
func TestAppendedRepliesFrame(t *testing.T) {
	tests := []struct {
		name  string
		reply []byte
	}{
		{"error", AppendError(nil, "ERR x\r\ny")},
		{"status", AppendStatus(nil, "OK")},
		{"int", AppendInt(nil, -1<<63)},
		{"bulk", AppendBulk(nil, []byte("\r\n"))},
		{"null", AppendNull(nil)},
		{"array", AppendBulkString(AppendNull(AppendArray(nil, 2)), "x")},
		{"resp3 null", AppendNull3(nil)},
		{"map", AppendDouble(AppendBool(AppendInt(AppendNull3(AppendMap(nil, 2)), 1), true), math.Inf(-1))},
		{"set", AppendBigNumber(AppendVerbatim(AppendSet(nil, 2), "txt", []byte("a\r\nb")), "1")},
		{"push", AppendMap(AppendSet(AppendBulkString(AppendPush(nil, 3), "message"), 0), 0)},
		{"big number with newlines", AppendBigNumber(nil, "\r\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n, err := ReadReply(tt.reply); n != len(tt.reply) || err != nil {
				t.Fatalf("ReadReply(%q) = %d, %v", tt.reply, n, err)
			}
		})
	}
	if v, n, err := ReadInteger(AppendInt(nil, -1<<63)); v != -1<<63 || n != 23 || err != nil {
		t.Fatalf("ReadInteger = %d, %d, %v", v, n, err)
	}
}
