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
	for _, seed := range resp3Seeds {
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
	for _, seed := range resp3Seeds {
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

// resp3Seeds are RESP3 replies for the fuzz targets: every type, streamed
// strings and aggregates, attributes, pushes, nesting, and near misses.
var resp3Seeds = []string{
	"$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;0\r\n", "$?\r\n;0\r\n", "*?\r\n:1\r\n*?\r\n.\r\n.\r\n",
	"%?\r\n+a\r\n:1\r\n.\r\n", "~?\r\n#t\r\n_\r\n.\r\n", "%?\r\n+a\r\n.\r\n", "*2\r\n.\r\n:1\r\n",
	"|1\r\n+ttl\r\n:3\r\n%?\r\n$?\r\n;1\r\nk\r\n;0\r\n,1.5\r\n.\r\n", ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n",
	"%2\r\n*1\r\n:1\r\n~0\r\n(1234567890123456789012\r\n=7\r\ntxt:abc\r\n", "!?\r\n;1\r\nE\r\n;0\r\n", ">?\r\n.\r\n",
	strings.Repeat("*?\r\n", 1001) + strings.Repeat(".\r\n", 1001), strings.Repeat("%?\r\n+k\r\n", 20) + "_\r\n" + strings.Repeat(".\r\n", 20),
}

// FuzzReadReply3 checks ReadReply on RESP3 input: it never panics, n is
// within b, errors are *Error, ParseValue agrees with it on n and on the
// error, and a reply it frames is framed the same when its bytes arrive
// split anywhere (every prefix but the whole needs more bytes) and in
// chunks of any size.
func FuzzReadReply3(f *testing.F) {
	for i, seed := range resp3Seeds {
		f.Add([]byte(seed), uint8(i))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		n, err := ReadReply(in)
		if n < 0 || n > len(in) || err != nil && n != 0 {
			t.Fatalf("n=%d err=%v for %d bytes", n, err, len(in))
		}
		if _, ok := err.(*Error); err != nil && !ok {
			t.Fatalf("error %T is not an *Error", err)
		}
		if _, pn, perr := ParseValue(in); pn != n || errText(perr) != errText(err) {
			t.Fatalf("ParseValue: n=%d err=%v; ReadReply: n=%d err=%v", pn, perr, n, err)
		}
		checkReplyPrefixes(t, in)
		if n == 0 {
			return
		}
		size := max(1+int(chunk), n/32) // at most 32 pieces: each piece walks the reply again
		if got, err := feedReplies(in[:n], size); err != nil || len(got) != 1 || got[0] != n {
			t.Fatalf("in chunks of %d: %v, %v; want [%d]", size, got, err, n)
		}
	})
}
