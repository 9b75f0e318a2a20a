package resp

import (
	"strconv"
	"testing"
)

func benchRequest(b *testing.B, in []byte) {
	b.Helper()
	var req Request
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if n, err := ReadRequest(in, &req, Limits{}); n != len(in) || err != nil {
			b.Fatalf("n=%d err=%v", n, err)
		}
	}
}

func BenchmarkReadRequestSet(b *testing.B) {
	benchRequest(b, AppendCommand(nil, []byte("SET"), []byte("key:000123"), make([]byte, 64)))
}

func BenchmarkReadRequestMGet10(b *testing.B) {
	args := [][]byte{[]byte("MGET")}
	for i := 0; i < 10; i++ {
		args = append(args, []byte("key:"+strconv.Itoa(i)))
	}
	benchRequest(b, AppendCommand(nil, args...))
}

func BenchmarkReadRequestInlineQuoted(b *testing.B) {
	benchRequest(b, []byte(`SET key "hello\tworld\x21" 'it\'s'`+"\r\n"))
}

func benchReply(b *testing.B, in []byte) {
	b.Helper()
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if n, err := ReadReply(in); n != len(in) || err != nil {
			b.Fatalf("n=%d err=%v", n, err)
		}
	}
}

func BenchmarkReadReplyBulk(b *testing.B) {
	benchReply(b, AppendBulk(nil, make([]byte, 256)))
}

func BenchmarkReadReplyArray(b *testing.B) {
	in := AppendArray(nil, 10)
	for i := 0; i < 10; i++ {
		in = AppendBulkString(in, "value:"+strconv.Itoa(i))
	}
	benchReply(b, in)
}

func BenchmarkReadReplyStatus(b *testing.B) {
	benchReply(b, []byte("+OK\r\n"))
}

func BenchmarkReadReplyInteger(b *testing.B) {
	benchReply(b, AppendInt(nil, 123456))
}

// BenchmarkReadReplyMap is a RESP3 HGETALL reply of 10 fields.
func BenchmarkReadReplyMap(b *testing.B) {
	in := []byte("%10\r\n")
	for i := 0; i < 10; i++ {
		in = AppendBulkString(in, "field:"+strconv.Itoa(i))
		in = AppendBulkString(in, "value:"+strconv.Itoa(i))
	}
	benchReply(b, in)
}

// BenchmarkReadReplyNested is an array of 10 arrays of 3 elements.
func BenchmarkReadReplyNested(b *testing.B) {
	in := AppendArray(nil, 10)
	for i := 0; i < 10; i++ {
		in = AppendInt(AppendBulkString(AppendArray(in, 3), "member"), int64(i))
		in = append(in, "_\r\n"...)
	}
	benchReply(b, in)
}

// BenchmarkReadReplyStreamed is a RESP3 streamed map of 10 pairs, each
// value a streamed string of 2 chunks.
func BenchmarkReadReplyStreamed(b *testing.B) {
	in := []byte("%?\r\n")
	for i := 0; i < 10; i++ {
		in = AppendBulkString(in, "field:"+strconv.Itoa(i))
		in = append(in, "$?\r\n;6\r\nvalue:\r\n;1\r\n"+strconv.Itoa(i)+"\r\n;0\r\n"...)
	}
	benchReply(b, append(in, ".\r\n"...))
}

func BenchmarkAppendCommand(b *testing.B) {
	args := [][]byte{[]byte("GET"), []byte("key:000123")}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendCommand(buf[:0], args...)
	}
}
