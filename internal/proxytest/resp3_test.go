package proxytest

import (
	"bufio"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// resp3Stream holds a reply of every RESP3 type, nested ones too.
var resp3Stream = []string{
	"%2\r\n$1\r\na\r\n,1.5\r\n$1\r\nb\r\n~2\r\n:1\r\n#t\r\n",
	"_\r\n", "#f\r\n", "(12345678901234567890\r\n", "=8\r\ntxt:some\r\n", "!3\r\nerr\r\n",
	"*3\r\n*2\r\n$1\r\nm\r\n,inf\r\n_\r\n%0\r\n", ">2\r\n+message\r\n$1\r\nx\r\n",
	"|1\r\n+key\r\n:1\r\n$1\r\nv\r\n", "$-1\r\n", "-ERR x\r\n",
}

// TestReadAny reads every RESP3 type from a stream that delivers one byte
// per read, so that each reply arrives in pieces.
func TestReadAny(t *testing.T) {
	r := bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(strings.Join(resp3Stream, ""))), 16)
	for _, want := range resp3Stream {
		got, err := ReadAny(r)
		if err != nil || got != want {
			t.Fatalf("ReadAny: %q, %v; want %q", got, err, want)
		}
	}
	if got, err := ReadAny(r); err != io.EOF {
		t.Errorf("at the end: %q, %v; want io.EOF", got, err)
	}
	r = bufio.NewReader(strings.NewReader("*2\r\n:1\r\n"))
	if _, err := ReadAny(r); err != io.ErrUnexpectedEOF {
		t.Errorf("cut reply: %v; want io.ErrUnexpectedEOF", err)
	}
}

// TestShapeAndSortSet checks the two views of a reply the RESP3 tests
// compare.
func TestShapeAndSortSet(t *testing.T) {
	raw := "%2\r\n$1\r\na\r\n~2\r\n$1\r\ny\r\n$1\r\nx\r\n$1\r\nb\r\n*2\r\n_\r\n~0\r\n"
	if got, want := Shape(raw), `%[$"a": ~[$ $] $"b": *[_ ~[]]]`; got != want {
		t.Errorf("Shape: %s, want %s", got, want)
	}
	want := "%2\r\n$1\r\na\r\n~2\r\n$1\r\nx\r\n$1\r\ny\r\n$1\r\nb\r\n*2\r\n_\r\n~0\r\n"
	if got := SortSet(raw); got != want {
		t.Errorf("SortSet: %q, want %q", got, want)
	}
	if got := SortSet("*2\r\n$1\r\ny\r\n$1\r\nx\r\n"); got != "*2\r\n$1\r\ny\r\n$1\r\nx\r\n" {
		t.Errorf("SortSet sorted an array: %q", got)
	}
}
