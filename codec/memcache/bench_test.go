package memcache

import (
	"strings"
	"testing"
)

// benchRequest measures ReadRequest on one request.
func benchRequest(b *testing.B, in string) {
	buf := []byte(in)
	var req Request
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if n, err := ReadRequest(buf, &req, Limits{}); n != len(buf) || err != nil {
			b.Fatalf("ReadRequest = %d, %v", n, err)
		}
	}
}

func BenchmarkReadRequestGet1(b *testing.B) { benchRequest(b, "get user:1000\r\n") }

func BenchmarkReadRequestGet10(b *testing.B) {
	benchRequest(b, "get"+strings.Repeat(" user:1000", 10)+"\r\n")
}

func BenchmarkReadRequestSet100(b *testing.B) {
	benchRequest(b, "set user:1000 0 3600 100\r\n"+strings.Repeat("v", 100)+"\r\n")
}

func BenchmarkReadReplyGet10(b *testing.B) {
	var reply []byte
	for i := 0; i < 10; i++ {
		reply = append(reply, "VALUE user:1000 0 100\r\n"+strings.Repeat("v", 100)+"\r\n"...)
	}
	reply = AppendEnd(reply)
	b.ReportAllocs()
	b.SetBytes(int64(len(reply)))
	for b.Loop() {
		if n, err := ReadReply(reply, CmdGet); n != len(reply) || err != nil {
			b.Fatalf("ReadReply = %d, %v", n, err)
		}
	}
}

func BenchmarkAppendRetrieval(b *testing.B) {
	keys := [][]byte{[]byte("user:1000"), []byte("user:1001"), []byte("user:1002")}
	dst := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendRetrieval(dst[:0], CmdGet, nil, keys)
	}
}
