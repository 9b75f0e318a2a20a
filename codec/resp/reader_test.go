package resp

import (
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReaderInStep(t *testing.T) {
	in := "+OK\r\n$5\r\nhello\r\n-ERR x\r\n*2\r\n:1\r\n$-1\r\n"
	want := []Value{str(KindSimple, "OK"), str(KindBulk, "hello"), str(KindError, "ERR x"),
		aggregate(KindArray, integer(1), null(KindBulk))}
	for name, rd := range map[string]io.Reader{
		"whole":        strings.NewReader(in),
		"byte by byte": iotest.OneByteReader(strings.NewReader(in)),
		"data and EOF": iotest.DataErrReader(strings.NewReader(in)),
	} {
		t.Run(name, func(t *testing.T) {
			r := NewReader(rd, 1<<10)
			for i, w := range want {
				v, err := r.ReadValue()
				if err != nil || !reflect.DeepEqual(v, w) {
					t.Fatalf("reply %d: %s, %v; want %s", i, show(v), err, show(w))
				}
			}
			if v, err := r.ReadValue(); err != io.EOF {
				t.Fatalf("after the last reply: %s, %v; want io.EOF", show(v), err)
			}
		})
	}
}

func TestReaderErrors(t *testing.T) {
	const limit = 64
	tests := []struct {
		name string
		in   string
		want error // io.EOF, io.ErrUnexpectedEOF, or an *Error with this text
	}{
		{"nothing", "", io.EOF},
		{"line cut", "+OK", io.ErrUnexpectedEOF},
		{"bulk cut", "$5\r\nhel", io.ErrUnexpectedEOF},
		{"bulk CRLF cut", "$5\r\nhello\r", io.ErrUnexpectedEOF},
		{"array cut", "*2\r\n:1\r\n", io.ErrUnexpectedEOF},
		{"malformed", "?x\r\n", &Error{Msg: "Protocol error: unknown reply type '?'"}},
		{"bulk without CRLF", "$2\r\nabcd\r\n", &Error{Msg: msgBulkTerminator}},
		{"bulk claims too much", "$99999999999\r\n", &Error{Msg: msgReplyTooLarge}},
		{"bulk one byte too long", "$58\r\n", &Error{Msg: msgReplyTooLarge}},
		{"line too long", "+" + strings.Repeat("x", limit), &Error{Msg: msgReplyTooLarge}},
		{"array too long", "*100\r\n" + strings.Repeat(":1\r\n", 100), &Error{Msg: msgReplyTooLarge}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewReader(iotest.OneByteReader(strings.NewReader(tt.in)), limit).ReadValue()
			if err == nil || err.Error() != tt.want.Error() || reflect.TypeOf(err) != reflect.TypeOf(tt.want) {
				t.Fatalf("got %s, %v; want error %v", show(v), err, tt.want)
			}
		})
	}
	// The longest reply the limit allows is read.
	in := "$57\r\n" + strings.Repeat("x", 57) + "\r\n"
	if v, err := NewReader(strings.NewReader(in), limit).ReadValue(); err != nil || len(v.Str) != 57 {
		t.Fatalf("a reply of %d bytes: %s, %v", len(in), show(v), err)
	}
}

func TestReaderReadError(t *testing.T) {
	boom := errors.New("boom")
	r := NewReader(io.MultiReader(strings.NewReader("+OK\r\n:1"), iotest.ErrReader(boom)), 1<<10)
	if v, err := r.ReadValue(); err != nil || string(v.Str) != "OK" {
		t.Fatalf("first reply: %s, %v", show(v), err)
	}
	if _, err := r.ReadValue(); err != boom {
		t.Fatalf("second reply: %v, want the read error", err)
	}
}

// TestReaderValuesStay reads random replies (several buffers full) in
// chunks of several sizes and checks each against ParseValue of its frame
// after all were read: a later read never overwrites an earlier value.
func TestReaderValuesStay(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	for round := range 100 {
		var in []byte
		var frames [][]byte
		for i := 100 + rnd.IntN(200); i >= 0; i-- {
			before := len(in)
			in = appendRandomReply(rnd, in, 0)
			frames = append(frames, in[before:])
		}
		for _, chunk := range []int{1, 7, 1000} {
			r := NewReader(iotest.HalfReader(&chunkReader{in: in, chunk: chunk}), 1<<20)
			var got []Value
			for range frames {
				v, err := r.ReadValue()
				if err != nil {
					t.Fatalf("round %d chunk %d: %v", round, chunk, err)
				}
				got = append(got, v)
			}
			for i, f := range frames {
				want, _, _ := ParseValue(f)
				if !reflect.DeepEqual(got[i], want) {
					t.Fatalf("round %d chunk %d reply %d: %s, want %s", round, chunk, i, show(got[i]), show(want))
				}
			}
		}
	}
}

// chunkReader returns in at most chunk bytes per Read.
type chunkReader struct {
	in    []byte
	chunk int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.in) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.chunk)], c.in)
	c.in = c.in[n:]
	return n, nil
}
