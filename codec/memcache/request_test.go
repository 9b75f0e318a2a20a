package memcache

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// parsed is what a test expects ReadRequest to fill in.
type parsed struct {
	cmd       Command
	keys      []string
	exptime   string
	data      string
	noreply   bool
	quiet     bool
	base64Key bool
}

// parsedOf copies the fields of req a test compares.
func parsedOf(req *Request) parsed {
	p := parsed{cmd: req.Cmd, exptime: string(req.Exptime), data: string(req.Data),
		noreply: req.NoReply, quiet: req.Quiet, base64Key: req.Base64Key}
	for _, k := range req.Keys {
		p.keys = append(p.keys, string(k))
	}
	return p
}

var (
	key250 = strings.Repeat("k", 250)
	key251 = strings.Repeat("k", 251)
	// manyKeys is a get line of 30 keys, more than memcached's 23 tokens.
	manyKeys = func() []string {
		var k []string
		for i := 0; i < 30; i++ {
			k = append(k, "key"+string(rune('a'+i%26))+strings.Repeat("x", i))
		}
		return k
	}()
)

var goodRequests = []struct {
	name string
	in   string
	want parsed
}{
	{"get", "get foo\r\n", parsed{cmd: CmdGet, keys: []string{"foo"}}},
	{"get lf only", "get foo\n", parsed{cmd: CmdGet, keys: []string{"foo"}}},
	{"get two cr", "get foo\r\r\n", parsed{cmd: CmdGet, keys: []string{"foo\r"}}},
	{"get extra spaces", "  get   a  b \r\n", parsed{cmd: CmdGet, keys: []string{"a", "b"}}},
	{"get key 250", "get " + key250 + "\r\n", parsed{cmd: CmdGet, keys: []string{key250}}},
	{"get control chars", "get a\tb\x01\r\n", parsed{cmd: CmdGet, keys: []string{"a\tb\x01"}}},
	{"get nul ends line", "get a\x00 b c\r\n", parsed{cmd: CmdGet, keys: []string{"a"}}},
	{"get many keys", "get " + strings.Join(manyKeys, " ") + "\r\n", parsed{cmd: CmdGet, keys: manyKeys}},
	{"gets", "gets a b\r\n", parsed{cmd: CmdGets, keys: []string{"a", "b"}}},
	{"gat", "gat 10 a b\r\n", parsed{cmd: CmdGat, exptime: "10", keys: []string{"a", "b"}}},
	{"gats negative", "gats -1 a\r\n", parsed{cmd: CmdGats, exptime: "-1", keys: []string{"a"}}},
	{"gat no keys", "gat 10\r\n", parsed{cmd: CmdGat, exptime: "10"}},
	{"set", "set k 0 0 3\r\nabc\r\n", parsed{cmd: CmdSet, keys: []string{"k"}, data: "abc"}},
	{"set noreply", "set k 5 10 3 noreply\r\nabc\r\n", parsed{cmd: CmdSet, keys: []string{"k"}, data: "abc", noreply: true}},
	{"set sixth token ignored", "set k 0 0 3 xx\r\nabc\r\n", parsed{cmd: CmdSet, keys: []string{"k"}, data: "abc"}},
	{"set binary value", "set k 0 0 6\r\na\r\n\x00b\n\r\n", parsed{cmd: CmdSet, keys: []string{"k"}, data: "a\r\n\x00b\n"}},
	{"set empty value", "set k 0 0 0\r\n\r\n", parsed{cmd: CmdSet, keys: []string{"k"}, data: ""}},
	{"set lf header", "set k 0 0 1\nx\r\n", parsed{cmd: CmdSet, keys: []string{"k"}, data: "x"}},
	{"set C numbers", "set k -0 -5000000000 +3\r\nabc\r\n", parsed{cmd: CmdSet, keys: []string{"k"}, data: "abc"}},
	{"set length truncated", "set k 0 0 -4294967293\r\nabc\r\n", parsed{cmd: CmdSet, keys: []string{"k"}, data: "abc"}},
	{"set flags wrap", "set k 18446744073709551615 0 1\r\na\r\n", parsed{cmd: CmdSet, keys: []string{"k"}, data: "a"}},
	{"set tab after length", "set k 0 0 3\tjunk\r\nabc\r\n", parsed{cmd: CmdSet, keys: []string{"k"}, data: "abc"}},
	{"add", "add k 0 0 1\r\na\r\n", parsed{cmd: CmdAdd, keys: []string{"k"}, data: "a"}},
	{"replace", "replace k 0 0 1\r\na\r\n", parsed{cmd: CmdReplace, keys: []string{"k"}, data: "a"}},
	{"append", "append k 0 0 1 noreply\r\na\r\n", parsed{cmd: CmdAppend, keys: []string{"k"}, data: "a", noreply: true}},
	{"prepend", "prepend k 0 0 1\r\na\r\n", parsed{cmd: CmdPrepend, keys: []string{"k"}, data: "a"}},
	{"cas", "cas k 0 0 1 99\r\na\r\n", parsed{cmd: CmdCas, keys: []string{"k"}, data: "a"}},
	{"cas noreply", "cas k 0 0 1 99 noreply\r\na\r\n", parsed{cmd: CmdCas, keys: []string{"k"}, data: "a", noreply: true}},
	{"delete", "delete k\r\n", parsed{cmd: CmdDelete, keys: []string{"k"}}},
	{"delete hold zero", "delete k 0\r\n", parsed{cmd: CmdDelete, keys: []string{"k"}}},
	{"delete noreply", "delete k noreply\r\n", parsed{cmd: CmdDelete, keys: []string{"k"}, noreply: true}},
	{"delete 0 noreply", "delete k 0 noreply\r\n", parsed{cmd: CmdDelete, keys: []string{"k"}, noreply: true}},
	{"delete key noreply", "delete noreply\r\n", parsed{cmd: CmdDelete, keys: []string{"noreply"}}},
	{"incr", "incr k 5\r\n", parsed{cmd: CmdIncr, keys: []string{"k"}}},
	{"decr noreply", "decr k 5 noreply\r\n", parsed{cmd: CmdDecr, keys: []string{"k"}, noreply: true}},
	{"touch", "touch k 10\r\n", parsed{cmd: CmdTouch, keys: []string{"k"}}},
	{"touch noreply", "touch k 10 noreply\r\n", parsed{cmd: CmdTouch, keys: []string{"k"}, noreply: true}},
	{"version", "version\r\n", parsed{cmd: CmdVersion}},
	{"version args", "version x y\r\n", parsed{cmd: CmdVersion}},
	{"quit", "quit\r\n", parsed{cmd: CmdQuit}},
	{"verbosity", "verbosity 1\r\n", parsed{cmd: CmdVerbosity}},
	{"verbosity noreply", "verbosity 1 noreply\r\n", parsed{cmd: CmdVerbosity, noreply: true}},
	{"flush_all", "flush_all\r\n", parsed{cmd: CmdFlushAll}},
	{"flush_all delay", "flush_all 10\r\n", parsed{cmd: CmdFlushAll}},
	{"flush_all noreply", "flush_all noreply\r\n", parsed{cmd: CmdFlushAll, noreply: true}},
	{"flush_all 0 noreply", "flush_all 0 noreply\r\n", parsed{cmd: CmdFlushAll, noreply: true}},
	{"stats", "stats\r\n", parsed{cmd: CmdStats}},
	{"stats slabs", "stats slabs\r\n", parsed{cmd: CmdStats}},
	{"mg", "mg k v f t\r\n", parsed{cmd: CmdMg, keys: []string{"k"}}},
	{"mg quiet base64", "mg Zm9v b q v\r\n", parsed{cmd: CmdMg, keys: []string{"Zm9v"}, quiet: true, base64Key: true}},
	{"ms", "ms k 3 T10 F5\r\nabc\r\n", parsed{cmd: CmdMs, keys: []string{"k"}, data: "abc"}},
	{"ms quiet", "ms k 3 q\r\nabc\r\n", parsed{cmd: CmdMs, keys: []string{"k"}, data: "abc", quiet: true}},
	{"ms bad flag forwarded", "ms k 3 !\r\nabc\r\n", parsed{cmd: CmdMs, keys: []string{"k"}, data: "abc"}},
	{"md", "md k q\r\n", parsed{cmd: CmdMd, keys: []string{"k"}, quiet: true}},
	{"ma", "ma k N0 J13 v\r\n", parsed{cmd: CmdMa, keys: []string{"k"}}},
	{"mn", "mn\r\n", parsed{cmd: CmdMn}},
}

func TestReadRequestGood(t *testing.T) {
	for _, tc := range goodRequests {
		t.Run(tc.name, func(t *testing.T) {
			var req Request
			n, err := ReadRequest([]byte(tc.in), &req, Limits{})
			if err != nil || n != len(tc.in) {
				t.Fatalf("ReadRequest(%q) = %d, %v; want %d, nil", tc.in, n, err, len(tc.in))
			}
			if got := parsedOf(&req); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ReadRequest(%q):\n got %+v\nwant %+v", tc.in, got, tc.want)
			}
			checkPrefixes(t, []byte(tc.in), Limits{})
		})
	}
}

func TestReadRequestLine(t *testing.T) {
	tests := []struct{ name, in, line string }{
		{"crlf", "get a\r\n", "get a"},
		{"lf", "get a\n", "get a"},
		{"lone cr kept", "\r\n", "\r"},
		{"storage", "set k 0 0 1\r\nx\r\n", "set k 0 0 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var req Request
			ReadRequest([]byte(tc.in), &req, Limits{})
			if string(req.Line) != tc.line {
				t.Fatalf("Line = %q, want %q", req.Line, tc.line)
			}
		})
	}
}

func TestReadRequestLimits(t *testing.T) {
	small := Limits{MaxKeys: 3, MaxValue: 10, MaxLine: 32}
	long := "get " + strings.Repeat("k ", 20)
	tests := []struct {
		name string
		in   string
		n    int // -1: the whole input
	}{
		{"value of MaxValue", "set k 0 0 10\r\n0123456789\r\n", -1},
		{"keys at MaxKeys", "get a b c\r\n", -1},
		{"line at MaxLine with its \\r", "set k 0 0 1 " + strings.Repeat("x", 19) + "\r\nx\r\n", -1},
		{"get line beyond MaxLine waits", long, 0},
		{"gets line beyond MaxLine waits", "gets" + long[3:], 0},
		{"get line after 100 spaces waits", strings.Repeat(" ", 100) + long, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var req Request
			n, err := ReadRequest([]byte(tc.in), &req, small)
			want := tc.n
			if want < 0 {
				want = len(tc.in)
			}
			if err != nil || n != want {
				t.Fatalf("ReadRequest(%q) = %d, %v; want %d, nil", tc.in, n, err, want)
			}
		})
	}
}

func TestReadRequestPipelined(t *testing.T) {
	var in strings.Builder
	var want []parsed
	for _, tc := range goodRequests {
		in.WriteString(tc.in)
		want = append(want, tc.want)
	}
	b := []byte(in.String())
	var got []parsed
	var req Request
	for len(b) > 0 {
		n, err := ReadRequest(b, &req, Limits{})
		if err != nil || n == 0 {
			t.Fatalf("after %d requests: n=%d err=%v at %q", len(got), n, err, b[:min(len(b), 40)])
		}
		got = append(got, parsedOf(&req))
		b = b[n:]
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("pipelined requests differ:\n got %+v\nwant %+v", got, want)
	}
}

// checkPrefixes checks that every proper prefix of in either needs more
// bytes or gives exactly what the whole input gives.
func checkPrefixes(t *testing.T, in []byte, lim Limits) {
	t.Helper()
	checkPrefixesEvery(t, in, lim, 1)
}

// checkPrefixesEvery is checkPrefixes for every stride-th prefix and the
// prefixes around the first frame's end.
func checkPrefixesEvery(t *testing.T, in []byte, lim Limits, stride int) {
	t.Helper()
	var whole, part Request
	n, err := ReadRequest(in, &whole, lim)
	for k := 0; k < len(in); k++ {
		if k%stride != 0 && (k < n-1 || k > n+1) {
			continue
		}
		pn, perr := ReadRequest(in[:k], &part, lim)
		if pn == 0 && perr == nil {
			if err == nil && n > 0 && n <= k {
				t.Fatalf("prefix %d: need more, but the whole input has a frame of %d", k, n)
			}
			continue
		}
		if pn != n || !sameError(perr, err) {
			t.Fatalf("prefix %d: n=%d err=%#v; whole input: n=%d err=%#v", k, pn, perr, n, err)
		}
		if err == nil && !reflect.DeepEqual(parsedOf(&part), parsedOf(&whole)) {
			t.Fatalf("prefix %d: %+v; whole input: %+v", k, parsedOf(&part), parsedOf(&whole))
		}
	}
}

// sameError reports whether a and b are both nil or equal *Errors.
func sameError(a, b error) bool {
	var ea, eb *Error
	if errors.As(a, &ea) && errors.As(b, &eb) {
		return *ea == *eb
	}
	return a == nil && b == nil
}
