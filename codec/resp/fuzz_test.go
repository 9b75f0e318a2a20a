package resp

import (
	"reflect"
	"strings"
	"testing"
)

// fuzzLimits are small, so fuzzing reaches the limit checks.
var fuzzLimits = Limits{MaxArgs: 8, MaxBulk: 64}

func FuzzReadRequest(f *testing.F) {
	for _, seed := range []string{
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", "*0\r\n", "*-1\r\n", "*1\r\n$4\r\nPI\r\n\r\n",
		"PING\r\n", `SET k "a\x41\n" 'b\'c'` + "\n", "*1\r\n*1\r\n", "*2\r\n$-1\r\n", "\"unbalanced\n",
		"*1\r\n$4\r\nPINGXX", "a\x00b\n", "*9\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, lim := range []Limits{{}, fuzzLimits} {
			var req Request
			n, err := ReadRequest(in, &req, lim)
			if n < 0 || n > len(in) || err != nil && n != 0 {
				t.Fatalf("n=%d err=%v for %d bytes", n, err, len(in))
			}
			if _, ok := err.(*Error); err != nil && !ok {
				t.Fatalf("error %T is not an *Error", err)
			}
			checkPrefixes(t, in, lim)
			if n == 0 {
				continue
			}
			// Re-encoded, the arguments read back the same.
			args := argStrings(req.Args)
			again := AppendCommand(nil, req.Args...)
			if m, err := ReadRequest(again, &req, Limits{}); m != len(again) || err != nil ||
				len(args) > 0 && !reflect.DeepEqual(argStrings(req.Args), args) {
				t.Fatalf("re-encoded %q: n=%d err=%v args=%q, want %q", again, m, err, req.Args, args)
			}
			// A multibulk frame has nothing to trim: the frame alone reads the same.
			if in[0] == '*' {
				if m, _ := ReadRequest(in[:n], &req, lim); m != n {
					t.Fatalf("frame alone: n=%d, want %d", m, n)
				}
			}
		}
	})
}

func FuzzReadReply(f *testing.F) {
	for _, seed := range []string{
		"+OK\r\n", "-ERR x\r\n", ":1\r\n", "$3\r\nabc\r\n", "$-1\r\n", "*2\r\n:1\r\n*1\r\n+x\r\n",
		"_\r\n", ",1.5\r\n", "#t\r\n", "!3\r\nERR\r\n", "=7\r\ntxt:abc\r\n", "(12345\r\n",
		"%1\r\n+a\r\n:1\r\n", "~1\r\n+a\r\n", ">2\r\n+a\r\n+b\r\n", "|1\r\n+a\r\n:1\r\n+OK\r\n",
		strings.Repeat("*1\r\n", 1001) + ":1\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		n, err := ReadReply(in)
		if n < 0 || n > len(in) || err != nil && n != 0 {
			t.Fatalf("n=%d err=%v for %d bytes", n, err, len(in))
		}
		if _, ok := err.(*Error); err != nil && !ok {
			t.Fatalf("error %T is not an *Error", err)
		}
		checkReplyPrefixes(t, in)
		if n > 0 {
			if m, err := ReadReply(in[:n]); m != n || err != nil {
				t.Fatalf("reply alone: n=%d err=%v, want %d", m, err, n)
			}
		}
		if c, m, err := ReadArrayHeader(in); m > len(in) || err != nil && m != 0 || m > 0 && c < -1 {
			t.Fatalf("ReadArrayHeader: %d, %d, %v", c, m, err)
		}
		if _, m, err := ReadInteger(in); m > len(in) || err != nil && m != 0 {
			t.Fatalf("ReadInteger: %d, %v", m, err)
		}
		if v, m, err := ReadBulkString(in); m > len(in) || err != nil && m != 0 || len(v) > m {
			t.Fatalf("ReadBulkString: %q, %d, %v", v, m, err)
		}
	})
}

// FuzzParseValue checks that ParseValue never panics, takes exactly the
// bytes ReadReply frames and fails exactly when it fails, and that a
// Reader reading the input in small pieces gets the same value.
func FuzzParseValue(f *testing.F) {
	for _, seed := range []string{
		"+OK\r\n", "-ERR x\r\n", ":1\r\n", "$3\r\nabc\r\n", "$-1\r\n", "*-1\r\n", "*2\r\n:1\r\n*1\r\n+x\r\n",
		"_\r\n", ",1.5\r\n", "#t\r\n", "!3\r\nERR\r\n", "=7\r\ntxt:abc\r\n", "(12345\r\n",
		"%1\r\n+a\r\n:1\r\n", "~1\r\n+a\r\n", ">2\r\n+a\r\n+b\r\n", "|1\r\n+a\r\n:1\r\n+OK\r\n",
		"*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n", strings.Repeat("*1\r\n", 1001) + ":1\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		v, n, err := ParseValue(in)
		rn, rerr := ReadReply(in)
		if n != rn || (err == nil) != (rerr == nil) || err != nil && err.Error() != rerr.Error() {
			t.Fatalf("ParseValue: n=%d err=%v; ReadReply: n=%d err=%v", n, err, rn, rerr)
		}
		if n == 0 {
			if !reflect.DeepEqual(v, Value{}) {
				t.Fatalf("no reply, but a value %s", show(v))
			}
			return
		}
		ParseScan(v)
		got, err := NewReader(&chunkReader{in: in, chunk: 3}, len(in)).ReadValue()
		if err != nil || !reflect.DeepEqual(got, v) {
			t.Fatalf("Reader: %s, %v; ParseValue: %s", show(got), err, show(v))
		}
	})
}
