package resp

import (
	"reflect"
	"strings"
	"testing"
)

// frame is what one ReadRequest call should report.
type frame struct {
	args   []string
	inline bool
}

// readAll parses every complete request of in and returns the frames and
// the error that stopped it (nil when only an incomplete tail was left).
func readAll(in []byte, lim Limits) (frames []frame, rest int, err error) {
	var req Request
	for len(in) > 0 {
		n, err := ReadRequest(in, &req, lim)
		if err != nil {
			return frames, len(in), err
		}
		if n == 0 {
			break
		}
		f := frame{args: []string{}, inline: req.Inline}
		for _, a := range req.Args {
			f.args = append(f.args, string(a))
		}
		frames = append(frames, f)
		in = in[n:]
	}
	return frames, len(in), nil
}

// checkPrefixes checks that every proper prefix of in either needs more
// bytes or gives exactly what the whole input gives.
func checkPrefixes(t *testing.T, in []byte, lim Limits) {
	t.Helper()
	var whole, part Request
	n, err := ReadRequest(in, &whole, lim)
	for k := 0; k < len(in); k = nextPrefix(k, len(in)) {
		pn, perr := ReadRequest(in[:k], &part, lim)
		switch {
		case pn == 0 && perr == nil:
			if err == nil && n != 0 && n <= k {
				t.Fatalf("prefix %d: need more, but the whole input has a frame of %d", k, n)
			}
		case perr != nil:
			if err == nil || perr.Error() != err.Error() {
				t.Fatalf("prefix %d: error %v, whole input: n=%d err=%v", k, perr, n, err)
			}
		default:
			if pn != n || !reflect.DeepEqual(argStrings(part.Args), argStrings(whole.Args)) {
				t.Fatalf("prefix %d: n=%d args=%q, whole input: n=%d args=%q", k, pn, part.Args, n, whole.Args)
			}
		}
	}
}

// nextPrefix returns the prefix length to check after k: every one for a
// short input, about 1024 spaced ones (and the longest) for a long input, so
// that a long input costs about 1024 parses rather than one per byte.
func nextPrefix(k, size int) int {
	next := k + max(1, size/1024)
	if next >= size && k < size-1 {
		return size - 1
	}
	return next
}

func argStrings(args [][]byte) []string {
	s := make([]string, len(args))
	for i, a := range args {
		s[i] = string(a)
	}
	return s
}

func TestReadRequestGood(t *testing.T) {
	mb := func(args ...string) frame { return frame{args: append([]string{}, args...)} }
	il := func(args ...string) frame { return frame{args: append([]string{}, args...), inline: true} }
	tests := []struct {
		name string
		in   string
		want []frame
		rest int // bytes left incomplete at the end
	}{
		{"set", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", []frame{mb("SET", "k", "v")}, 0},
		{"pipelined", "*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n*1\r\n$4\r\nPING\r\n",
			[]frame{mb("GET", "a"), mb("GET", "b"), mb("PING")}, 0},
		{"binary value with CRLF inside", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$6\r\na\r\n\x00\xff*\r\n",
			[]frame{mb("SET", "k", "a\r\n\x00\xff*")}, 0},
		{"empty bulk", "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", []frame{mb("ECHO", "")}, 0},
		{"zero count is an empty request", "*0\r\n*1\r\n$4\r\nPING\r\n", []frame{mb(), mb("PING")}, 0},
		{"null count is an empty request", "*-1\r\n", []frame{mb()}, 0},
		{"any negative count is empty as in redis", "*-5\r\n", []frame{mb()}, 0},
		{"incomplete tail", "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\n", []frame{mb("PING")}, 17},
		{"long bulk", "*2\r\n$4\r\nECHO\r\n$300\r\n" + strings.Repeat("x", 300) + "\r\n",
			[]frame{mb("ECHO", strings.Repeat("x", 300))}, 0},
		{"inline crlf", "PING\r\n", []frame{il("PING")}, 0},
		{"inline lf", "PING\n", []frame{il("PING")}, 0},
		{"inline pipelined", "PING\nGET a\r\nGET b\n", []frame{il("PING"), il("GET", "a"), il("GET", "b")}, 0},
		{"inline blanks", "  set \t k\tv  \r\n", []frame{il("set", "k", "v")}, 0},
		{"inline then multibulk", "GET a\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n", []frame{il("GET", "a"), mb("GET", "b")}, 0},
		{"inline empty line", "\r\n", []frame{il()}, 0},
		{"inline blank line", " \t \n", []frame{il()}, 0},
		{"inline double quotes", `SET k "a b"` + "\r\n", []frame{il("SET", "k", "a b")}, 0},
		{"inline escapes", `SET k "\x41\x4A\n\r\t\b\a\\\"\q"` + "\r\n",
			[]frame{il("SET", "k", "AJ\n\r\t\b\a\\\"q")}, 0},
		{"inline bad hex is literal", `ECHO "\xZZ\x4"` + "\n", []frame{il("ECHO", "xZZx4")}, 0},
		{"inline single quotes", `ECHO 'it\'s "x" \n'` + "\n", []frame{il("ECHO", `it's "x" \n`)}, 0},
		{"inline empty quoted", `SET "" ''` + "\n", []frame{il("SET", "", "")}, 0},
		{"inline quote inside argument", `SET a"b c" k` + "\n", []frame{il("SET", "ab c", "k")}, 0},
		{"inline vertical tab is part of an argument", "a\vb\n", []frame{il("a\vb")}, 0},
		{"inline vertical tab after closing quote", "\"a\"\vb\n", []frame{il("a", "b")}, 0},
		{"inline NUL ends the line", "GET k\x00junk \"\r\n", []frame{il("GET", "k")}, 0},
		{"inline CR CR LF", "PING\r\r\n", []frame{il("PING")}, 0},
		{"inline line of MaxInline bytes", strings.Repeat("a", MaxInline) + "\n",
			[]frame{il(strings.Repeat("a", MaxInline))}, 0},
		{"inline incomplete", "GET k", nil, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rest, err := readAll([]byte(tt.in), Limits{})
			if err != nil {
				t.Fatalf("error %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) || rest != tt.rest {
				t.Fatalf("got %+v rest %d, want %+v rest %d", got, rest, tt.want, tt.rest)
			}
			checkPrefixes(t, []byte(tt.in), Limits{})
		})
	}
}

// malformedRequests are inputs ReadRequest must refuse; redis tells whether
// redis-server refuses them the same way (see TestRedisAgrees).
var malformedRequests = []struct {
	name  string
	in    string
	lim   Limits
	msg   string
	redis bool
}{
	{"non-numeric count", "*abc\r\n", Limits{}, msgInvalidMultibulk, true},
	{"count with plus", "*+1\r\n", Limits{}, msgInvalidMultibulk, true},
	{"count with leading zero", "*01\r\n", Limits{}, msgInvalidMultibulk, true},
	{"empty count", "*\r\n", Limits{}, msgInvalidMultibulk, true},
	{"count overflows int64", "*99999999999999999999\r\n", Limits{}, msgInvalidMultibulk, true},
	{"count line too long", "*" + strings.Repeat("1", 30), Limits{}, msgInvalidMultibulk, false},
	{"count CR without LF", "*1\rx", Limits{}, msgInvalidMultibulk, false},
	{"count over MaxArgs", "*3\r\n", Limits{MaxArgs: 2}, msgInvalidMultibulk, false},
	{"count over default MaxArgs", "*1048577\r\n", Limits{}, msgInvalidMultibulk, false},
	{"nested array where a bulk is expected", "*1\r\n*1\r\n$1\r\na\r\n", Limits{}, "Protocol error: expected '$', got '*'", true},
	{"garbage where a bulk is expected", "*1\r\nxyz\r\n", Limits{}, "Protocol error: expected '$', got 'x'", true},
	{"negative bulk length", "*1\r\n$-1\r\n", Limits{}, msgInvalidBulk, true},
	{"non-numeric bulk length", "*1\r\n$abc\r\n", Limits{}, msgInvalidBulk, true},
	{"bulk length over 512MB", "*1\r\n$536870913\r\n", Limits{}, msgInvalidBulk, true},
	{"huge bulk length", "*1\r\n$9223372036854775807\r\n", Limits{}, msgInvalidBulk, true},
	{"bulk over MaxBulk", "*2\r\n$3\r\nGET\r\n$5\r\nhello\r\n", Limits{MaxBulk: 4}, msgInvalidBulk, false},
	{"missing CRLF after bulk", "*1\r\n$4\r\nPINGXX", Limits{}, msgBulkTerminator, false},
	{"inline unbalanced double quote", "SET k \"abc\r\n", Limits{}, msgUnbalanced, true},
	{"inline unbalanced single quote", "SET k 'abc\r\n", Limits{}, msgUnbalanced, true},
	{"inline text after closing double quote", "SET k \"a\"b\r\n", Limits{}, msgUnbalanced, true},
	{"inline text after closing single quote", "SET k 'a'b\r\n", Limits{}, msgUnbalanced, true},
	{"inline escaped closing quote", "SET k \"a\\\"\r\n", Limits{}, msgUnbalanced, true},
	{"inline trailing backslash", "SET k \"a\\\r\n", Limits{}, msgUnbalanced, true},
	{"inline too big without newline", strings.Repeat("a", MaxInline+1), Limits{}, msgTooBigInline, true},
	{"inline too big with newline", strings.Repeat("a", MaxInline+1) + "\n", Limits{}, msgTooBigInline, false},
}

func TestReadRequestMalformed(t *testing.T) {
	for _, tt := range malformedRequests {
		t.Run(tt.name, func(t *testing.T) {
			var req Request
			n, err := ReadRequest([]byte(tt.in), &req, tt.lim)
			e, ok := err.(*Error)
			if n != 0 || !ok || e.Msg != tt.msg {
				t.Fatalf("got n=%d err=%v, want *Error %q", n, err, tt.msg)
			}
			if len(req.Args) != 0 {
				t.Fatalf("args %q left after an error", req.Args)
			}
			checkPrefixes(t, []byte(tt.in), tt.lim)
		})
	}
}

func TestReadRequestReusesArgs(t *testing.T) {
	var req Request
	in := []byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\nSET k \"v w\"\r\n")
	n, err := ReadRequest(in, &req, Limits{})
	if err != nil || n != 27 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	backing := &req.Args[:1][0]
	if m, err := ReadRequest(in[n:], &req, Limits{}); err != nil || m != len(in)-n {
		t.Fatalf("n=%d err=%v", m, err)
	}
	if &req.Args[:1][0] != backing {
		t.Fatal("Args' backing array was not reused")
	}
	if got := argStrings(req.Args); !reflect.DeepEqual(got, []string{"SET", "k", "v w"}) || !req.Inline {
		t.Fatalf("got %q inline=%v", got, req.Inline)
	}
	req.Args[0] = append(req.Args[0], "XX"...)
	if string(req.Args[1]) != "k" || string(in[n+4:n+5]) != "k" {
		t.Fatal("appending to an argument clobbered the next one")
	}
}

func TestNeed(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int
	}{
		{"empty", "", 0},
		{"inline", "GET k", 0},
		{"header incomplete", "*2\r\n$3", 0},
		{"first bulk arriving", "*2\r\n$3\r\nGE", 13},
		{"big bulk arriving", "*2\r\n$3\r\nSET\r\n$100000\r\nabc", 13 + 9 + 100000 + 2},
		{"bulk complete, next header missing", "*2\r\n$3\r\nGET\r\n", 0},
		{"complete frame", "*1\r\n$4\r\nPING\r\n", 0},
		{"malformed", "*1\r\nx", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Need([]byte(tt.in)); got != tt.want {
				t.Fatalf("Need = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestParseInt(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int64
		ok   bool
	}{
		{"zero", "0", 0, true},
		{"one", "1", 1, true},
		{"negative", "-42", -42, true},
		{"max", "9223372036854775807", 1<<63 - 1, true},
		{"min", "-9223372036854775808", -1 << 63, true},
		{"over max", "9223372036854775808", 0, false},
		{"under min", "-9223372036854775809", 0, false},
		{"uint64 overflow", "99999999999999999999", 0, false},
		{"empty", "", 0, false},
		{"minus alone", "-", 0, false},
		{"minus zero", "-0", 0, false},
		{"leading zero", "007", 0, false},
		{"plus", "+1", 0, false},
		{"space", " 1", 0, false},
		{"letter", "1a", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseInt([]byte(tt.in))
			if got != tt.want || ok != tt.ok {
				t.Fatalf("parseInt(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}
