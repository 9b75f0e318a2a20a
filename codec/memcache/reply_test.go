package memcache

import (
	"errors"
	"strings"
	"testing"
)

var goodReplies = []struct {
	name string
	cmd  Command
	in   string
}{
	{"get miss", CmdGet, "END\r\n"},
	{"get hit", CmdGet, "VALUE k 0 3\r\nabc\r\nEND\r\n"},
	{"gets hit", CmdGets, "VALUE k 5 3 42\r\nabc\r\nEND\r\n"},
	{"get binary value", CmdGet, "VALUE k 0 8\r\nEND\r\n\x00\r\n\r\nEND\r\n"},
	{"get empty value", CmdGet, "VALUE k 0 0\r\n\r\nEND\r\n"},
	{"get two values", CmdGat, "VALUE a 0 1\r\nx\r\nVALUE b 1 2\r\nyy\r\nEND\r\n"},
	{"get error", CmdGet, "CLIENT_ERROR bad command line format\r\n"},
	{"get server error", CmdGets, "SERVER_ERROR out of memory writing get response\r\n"},
	{"get plain error", CmdGats, "ERROR\r\n"},
	{"stats", CmdStats, "STAT pid 1\r\nSTAT uptime 2\r\nEND\r\n"},
	{"stats empty", CmdStats, "END\r\n"},
	{"stats reset", CmdStats, "RESET\r\n"},
	{"stats detail on", CmdStats, "OK\r\n"},
	{"stats error", CmdStats, "ERROR\r\n"},
	{"stats cachedump", CmdStats, "ITEM k [1 b; 0 s]\r\nEND\r\n"},
	{"mg hit", CmdMg, "VA 3 s3 t-1\r\nabc\r\n"},
	{"mg hit no flags", CmdMg, "VA 2\r\n\r\n\r\n"},
	{"mg header", CmdMg, "HD c42\r\n"},
	{"mg miss", CmdMg, "EN\r\n"},
	{"ms", CmdMs, "HD\r\n"},
	{"ms not stored", CmdMs, "NS\r\n"},
	{"md", CmdMd, "NF\r\n"},
	{"ma value", CmdMa, "VA 2\r\n14\r\n"},
	{"mn", CmdMn, "MN\r\n"},
	{"meta error", CmdMg, "CLIENT_ERROR bad command line format\r\n"},
	{"set", CmdSet, "STORED\r\n"},
	{"cas", CmdCas, "EXISTS\r\n"},
	{"delete", CmdDelete, "DELETED\r\n"},
	{"incr", CmdIncr, "42\r\n"},
	{"touch", CmdTouch, "TOUCHED\r\n"},
	{"version", CmdVersion, "VERSION 1.6.18\r\n"},
	{"flush_all", CmdFlushAll, "OK\r\n"},
	{"empty line", CmdSet, "\r\n"},
}

func TestReadReplyGood(t *testing.T) {
	for _, tc := range goodReplies {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in + "VERSION 1.6.18\r\n") // a pipelined reply follows
			n, err := ReadReply(in, tc.cmd)
			if err != nil || n != len(tc.in) {
				t.Fatalf("ReadReply(%q, %v) = %d, %v; want %d, nil", tc.in, tc.cmd, n, err, len(tc.in))
			}
			for k := 0; k < len(tc.in); k++ {
				if n, err := ReadReply(in[:k], tc.cmd); n != 0 || err != nil {
					t.Fatalf("prefix %d: %d, %v; want 0, nil", k, n, err)
				}
			}
		})
	}
}

func TestReadReplyMalformed(t *testing.T) {
	tests := []struct {
		name string
		cmd  Command
		in   string
	}{
		{"lf only", CmdSet, "STORED\n"},
		{"lone lf", CmdSet, "\n"},
		{"line too long", CmdSet, strings.Repeat("x", maxReplyLine)},
		{"get unexpected line", CmdGet, "STORED\r\n"},
		{"get error after value", CmdGet, "VALUE k 0 1\r\nx\r\nSERVER_ERROR x\r\n"},
		{"value without length", CmdGet, "VALUE k 0\r\n"},
		{"value bad length", CmdGet, "VALUE k 0 x\r\n"},
		{"value negative length", CmdGet, "VALUE k 0 -1\r\n"},
		{"value huge length", CmdGet, "VALUE k 0 2147483648\r\n"},
		{"value bad flags", CmdGet, "VALUE k x 1\r\n"},
		{"value bad cas", CmdGets, "VALUE k 0 1 x\r\n"},
		{"value extra token", CmdGets, "VALUE k 0 1 2 3\r\n"},
		{"value without key", CmdGet, "VALUE\r\n"},
		{"value data too long", CmdGet, "VALUE k 0 1\r\nxy\r\nEND\r\n"},
		{"meta bad size", CmdMg, "VA x\r\nabc\r\n"},
		{"meta data too long", CmdMa, "VA 1\r\n14\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := ReadReply([]byte(tc.in), tc.cmd)
			if !errors.Is(err, ErrProtocol) || n != 0 {
				t.Fatalf("ReadReply(%.40q, %v) = %d, %v; want 0, ErrProtocol", tc.in, tc.cmd, n, err)
			}
		})
	}
}

func TestReadValue(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		key     string
		n       int
		ok, bad bool
	}{
		{"value", "VALUE foo 0 3\r\nabc\r\nEND\r\n", "foo", 20, true, false},
		{"value with cas", "VALUE foo 0 3 7\r\nabc\r\n", "foo", 22, true, false},
		{"end", "END\r\n", "", 5, false, false},
		{"incomplete header", "VALUE foo 0 3\r", "", 0, false, false},
		{"incomplete data", "VALUE foo 0 3\r\nab", "", 0, false, false},
		{"empty", "", "", 0, false, false},
		{"error line", "SERVER_ERROR x\r\n", "", 0, false, true},
		{"bad terminator", "VALUE foo 0 3\r\nabcd\r\n", "", 0, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, n, ok, err := ReadValue([]byte(tc.in))
			if string(key) != tc.key || n != tc.n || ok != tc.ok || (err != nil) != tc.bad {
				t.Fatalf("ReadValue(%q) = %q, %d, %v, %v; want %q, %d, %v, bad=%v",
					tc.in, key, n, ok, err, tc.key, tc.n, tc.ok, tc.bad)
			}
			if tc.bad && !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
		})
	}
}

// TestMergeFragments merges replies to two fragments of a split get in key
// order, the way the proxy does with ReadValue and AppendEnd.
func TestMergeFragments(t *testing.T) {
	replies := map[string]string{ // server reply per fragment
		"a c": "VALUE a 0 1\r\n1\r\nVALUE c 0 3\r\n3\r\n\r\nEND\r\n",
		"b d": "VALUE d 0 1\r\n4\r\nEND\r\n",
	}
	blocks := map[string][]byte{}
	for _, r := range replies {
		b := []byte(r)
		for {
			key, n, ok, err := ReadValue(b)
			if err != nil || n == 0 {
				t.Fatalf("ReadValue(%q) = %d, %v", b, n, err)
			}
			if !ok {
				break
			}
			blocks[string(key)], b = b[:n], b[n:]
		}
	}
	var out []byte
	for _, k := range []string{"a", "b", "c", "d"} {
		out = append(out, blocks[k]...)
	}
	out = AppendEnd(out)
	want := "VALUE a 0 1\r\n1\r\nVALUE c 0 3\r\n3\r\n\r\nVALUE d 0 1\r\n4\r\nEND\r\n"
	if string(out) != want {
		t.Fatalf("merged %q, want %q", out, want)
	}
	if n, err := ReadReply(out, CmdGet); n != len(out) || err != nil {
		t.Fatalf("ReadReply(merged) = %d, %v", n, err)
	}
}

func TestAppend(t *testing.T) {
	keys := [][]byte{[]byte("k1"), []byte("k3")}
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"get", AppendRetrieval(nil, CmdGet, nil, keys), "get k1 k3\r\n"},
		{"gets", AppendRetrieval([]byte("x"), CmdGets, nil, keys[:1]), "xgets k1\r\n"},
		{"gat", AppendRetrieval(nil, CmdGat, []byte("10"), keys), "gat 10 k1 k3\r\n"},
		{"gats", AppendRetrieval(nil, CmdGats, []byte("-1"), keys[1:]), "gats -1 k3\r\n"},
		{"end", AppendEnd([]byte("VALUE a 0 0\r\n\r\n")), "VALUE a 0 0\r\n\r\nEND\r\n"},
		{"line", AppendLine(nil, "SERVER_ERROR backend down"), "SERVER_ERROR backend down\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if string(tc.got) != tc.want {
				t.Fatalf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}

// TestAppendRetrievalRoundTrip checks that a fragment re-parses to the
// command, exptime and keys it was built from.
func TestAppendRetrievalRoundTrip(t *testing.T) {
	var req Request
	frag := AppendRetrieval(nil, CmdGats, []byte("30"), [][]byte{[]byte("a"), []byte("b")})
	n, err := ReadRequest(frag, &req, Limits{})
	got := parsedOf(&req)
	want := parsed{cmd: CmdGats, exptime: "30", keys: []string{"a", "b"}}
	if n != len(frag) || err != nil || got.cmd != want.cmd || got.exptime != want.exptime ||
		strings.Join(got.keys, " ") != "a b" {
		t.Fatalf("ReadRequest(%q) = %d, %v, %+v", frag, n, err, got)
	}
}

func TestCommand(t *testing.T) {
	tests := []struct {
		cmd                      Command
		name                     string
		retrieval, storage, meta bool
	}{
		{CmdGet, "get", true, false, false},
		{CmdGats, "gats", true, false, false},
		{CmdCas, "cas", false, true, false},
		{CmdMs, "ms", false, true, true},
		{CmdMn, "mn", false, false, true},
		{CmdFlushAll, "flush_all", false, false, false},
		{CmdUnknown, "unknown", false, false, false},
		{Command(200), "unknown", false, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cmd.String() != tc.name || tc.cmd.Retrieval() != tc.retrieval ||
				tc.cmd.Storage() != tc.storage || tc.cmd.Meta() != tc.meta {
				t.Fatalf("%d: %q retrieval=%v storage=%v meta=%v", tc.cmd, tc.cmd.String(),
					tc.cmd.Retrieval(), tc.cmd.Storage(), tc.cmd.Meta())
			}
		})
	}
}
