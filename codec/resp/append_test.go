package resp

import (
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
