package memcache

import (
	"strings"
	"testing"
)

// malformedCase is a request memcached refuses. The same table drives the
// comparison with the real memcached (memcached_test.go), except cases marked
// own: those are the proxy's own limits, where memcached behaves otherwise.
type malformedCase struct {
	name  string
	in    string
	lim   Limits
	n     int // bytes consumed; line (-1) for the first line
	want  Error
	split int  // send the first split bytes alone to memcached, then pause
	own   bool // a deliberate difference from memcached
	// late is set when memcached answers only after it swallowed a data
	// block too large for the test to send; the proxy answers at once.
	late bool
}

// line stands for the length of a case's first line, "\n" included.
const line = -1

// e builds the expected error of a case.
func e(reply string) Error { return Error{Reply: reply} }

// silent builds the expected error of a noreply case.
func silent(reply string) Error { return Error{Reply: reply, NoReply: true} }

var (
	longLine      = "set " + strings.Repeat("k", 3000) + " 0 0 1\r\nx\r\n"
	longGat       = "gat 1 " + strings.Repeat("k1 ", 1000) + "\r\n"
	spacedGet     = strings.Repeat(" ", 101) + "get " + strings.Repeat("k1 ", 1000) + "\r\n"
	bigValue      = "set big 0 0 2000000\r\n" + strings.Repeat("v", 2000000) + "\r\n"
	bigValueNR    = "set big 0 0 2000000 noreply\r\n" + strings.Repeat("v", 2000000) + "\r\n"
	bigMeta       = "ms big 2000000 T0\r\n" + strings.Repeat("v", 2000000) + "\r\n"
	seventeenFlag = "ms k 3" + strings.Repeat(" T1", 17) + "\r\nabc\r\n"
	small         = Limits{MaxKeys: 3, MaxValue: 10, MaxLine: 32}
	closeLine     = Error{Reply: replyLineTooLong, NoReply: true, Close: true}
)

var malformedRequests = []malformedCase{
	{name: "unknown command", in: "foo bar\r\n", n: line, want: e("ERROR")},
	{name: "empty line", in: "\r\n", n: line, want: e("ERROR")},
	{name: "empty lf line", in: "\n", n: line, want: e("ERROR")},
	{name: "spaces only", in: "   \r\n", n: line, want: e("ERROR")},
	{name: "one letter command", in: "g k\r\n", n: line, want: e("ERROR")},
	{name: "upper case", in: "GET k\r\n", n: line, want: e("ERROR")},
	{name: "tab is no separator", in: "get\tk\r\n", n: line, want: e("ERROR")},
	{name: "nul empties line", in: "\x00get k\r\n", n: line, want: e("ERROR")},
	{name: "get without key", in: "get\r\n", n: line, want: e("ERROR")},
	{name: "get space only", in: "get \r\n", n: line, want: e("ERROR")},
	{name: "get key 251", in: "get " + key251 + "\r\n", n: line, want: e(replyBadFormat)},
	{name: "get key 251 after 23", in: "get" + strings.Repeat(" a", 23) + " " + key251 + "\r\n", n: line, want: e(replyBadFormat)},
	{name: "gets key 251", in: "gets a " + key251 + "\r\n", n: line, want: e(replyBadFormat)},
	{name: "gat bad exptime", in: "gat x k\r\n", n: line, want: e(replyBadExptime)},
	{name: "gat exptime out of range", in: "gat 9223372036854775808 k\r\n", n: line, want: e(replyBadExptime)},
	{name: "gat bad exptime before key", in: "gat x " + key251 + "\r\n", n: line, want: e(replyBadExptime)},
	{name: "set key 251", in: "set " + key251 + " 0 0 3\r\nabc\r\n", n: line, want: e(replyBadFormat)},
	{name: "set key 251 noreply", in: "set " + key251 + " 0 0 3 noreply\r\nabc\r\n", n: line, want: silent(replyBadFormat)},
	{name: "set flags not numeric", in: "set k x 0 3\r\nabc\r\n", n: line, want: e(replyBadFormat)},
	{name: "set flags negative", in: "set k -1 0 3\r\nabc\r\n", n: line, want: e(replyBadFormat)},
	{name: "set flags over 64 bits", in: "set k 18446744073709551616 0 3\r\nabc\r\n", n: line, want: e(replyBadFormat)},
	{name: "set exptime not numeric", in: "set k 0 x 3\r\nabc\r\n", n: line, want: e(replyBadFormat)},
	{name: "set exptime over 64 bits", in: "set k 0 9223372036854775808 3\r\nabc\r\n", n: line, want: e(replyBadFormat)},
	{name: "set length not numeric", in: "set k 0 0 x\r\nabc\r\n", n: line, want: e(replyBadFormat)},
	{name: "set length trailing junk", in: "set k 0 0 3x\r\nabc\r\n", n: line, want: e(replyBadFormat)},
	{name: "set length negative", in: "set k 0 0 -1\r\nabc\r\n", n: line, want: e(replyBadFormat)},
	{name: "set length INT_MAX-1", in: "set k 0 0 2147483646\r\nabc\r\n", n: line, want: e(replyBadFormat)},
	{name: "set length over 31 bits", in: "set k 0 0 2147483648\r\nabc\r\n", n: line, want: e(replyBadFormat)},
	{name: "set length noreply", in: "set k 0 0 x noreply\r\nabc\r\n", n: line, want: silent(replyBadFormat)},
	{name: "set noreply as length", in: "set k 0 0 noreply\r\nabc\r\n", n: line, want: silent(replyBadFormat)},
	{name: "set too many tokens", in: "set k 0 0 3 noreply x\r\nabc\r\n", n: line, want: e("ERROR")},
	{name: "set too few tokens", in: "set k 0 0\r\nabc\r\n", n: line, want: e("ERROR")},
	{name: "cas bad unique", in: "cas k 0 0 3 x\r\nabc\r\n", n: line, want: e(replyBadFormat)},
	{name: "cas negative unique", in: "cas k 0 0 3 -1\r\nabc\r\n", n: line, want: e(replyBadFormat)},
	{name: "cas missing unique", in: "cas k 0 0 3\r\nabc\r\n", n: line, want: e("ERROR")},
	{name: "data too short", in: "set k 0 0 3\r\nab\r\nget k\r\n", n: 18, want: e(replyBadChunk)},
	{name: "data too long", in: "set k 0 0 3\r\nabcd\r\n", n: 18, want: e(replyBadChunk)},
	{name: "data without crlf", in: "set k 0 0 3\r\nabcXYget k\r\n", n: 18, want: e(replyBadChunk)},
	{name: "data with lf only", in: "set k 0 0 1\r\na\nX", n: 16, want: e(replyBadChunk)},
	{name: "bad chunk noreply", in: "set k 0 0 3 noreply\r\nabcd\r\n", n: 26, want: silent(replyBadChunk)},
	{name: "value too large", in: bigValue, n: 21, want: Error{Reply: replyTooLarge, Swallow: 2000002}},
	{name: "value too large noreply", in: bigValueNR, n: 29, want: Error{Reply: replyTooLarge, NoReply: true, Swallow: 2000002}},
	{name: "length INT_MAX-2", in: "set big 0 0 2147483645\r\nabc\r\n", n: 24, want: Error{Reply: replyTooLarge, Swallow: 2147483647}, late: true},
	{name: "length truncated to 32 bits", in: "set big 0 0 -3000000000\r\nabc\r\n", n: 25, want: Error{Reply: replyTooLarge, Swallow: 1294967298}, late: true},
	{name: "incr bad delta", in: "incr k x\r\n", n: line, want: e(replyBadDelta)},
	{name: "incr negative delta", in: "incr k -1\r\n", n: line, want: e(replyBadDelta)},
	{name: "incr bad delta noreply", in: "incr k x noreply\r\n", n: line, want: silent(replyBadDelta)},
	{name: "incr key 251", in: "incr " + key251 + " x\r\n", n: line, want: e(replyBadFormat)},
	{name: "incr too few", in: "incr k\r\n", n: line, want: e("ERROR")},
	{name: "decr too many", in: "decr k 1 noreply x\r\n", n: line, want: e("ERROR")},
	{name: "touch bad exptime", in: "touch k x\r\n", n: line, want: e(replyBadExptime)},
	{name: "touch key 251", in: "touch " + key251 + " 1 noreply\r\n", n: line, want: silent(replyBadFormat)},
	{name: "delete hold time", in: "delete k 5\r\n", n: line, want: e(replyBadDelete)},
	{name: "delete hold time noreply", in: "delete k 5 noreply\r\n", n: line, want: silent(replyBadDelete)},
	{name: "delete key 251", in: "delete " + key251 + "\r\n", n: line, want: e(replyBadFormat)},
	{name: "delete key 251 hold", in: "delete " + key251 + " 5\r\n", n: line, want: e(replyBadDelete)},
	{name: "delete too many", in: "delete k a b c\r\n", n: line, want: e("ERROR")},
	{name: "verbosity alone", in: "verbosity\r\n", n: line, want: e("ERROR")},
	{name: "verbosity bad level", in: "verbosity x\r\n", n: line, want: e(replyBadFormat)},
	{name: "verbosity noreply", in: "verbosity noreply\r\n", n: line, want: silent(replyBadFormat)},
	{name: "flush_all bad delay", in: "flush_all x\r\n", n: line, want: e(replyBadExptime)},
	{name: "flush_all noreply first", in: "flush_all noreply 5\r\n", n: line, want: e(replyBadExptime)},
	{name: "flush_all too many", in: "flush_all 0 x y\r\n", n: line, want: e("ERROR")},
	{name: "mg without key", in: "mg\r\n", n: line, want: e("ERROR")},
	{name: "mg key 251", in: "mg " + key251 + " v\r\n", n: line, want: e(replyBadFormat)},
	{name: "md key 251", in: "md " + key251 + " q\r\n", n: line, want: e(replyBadFormat)},
	{name: "ma without key", in: "ma\r\n", n: line, want: e("ERROR")},
	{name: "unknown meta", in: "mz k\r\n", n: line, want: e("ERROR")},
	{name: "ms without key", in: "ms\r\nabc\r\n", n: line, want: e("ERROR")},
	{name: "ms without length", in: "ms k\r\nabc\r\n", n: line, want: e(replyBadFormat)},
	{name: "ms bad length", in: "ms k x\r\nabc\r\n", n: line, want: e(replyBadFormat)},
	{name: "ms negative length", in: "ms k -1\r\nabc\r\n", n: line, want: e(replyBadFormat)},
	{name: "ms key 251", in: "ms " + key251 + " 3\r\nabc\r\n", n: line, want: e(replyBadFormat)},
	{name: "ms 17 flags", in: seventeenFlag, n: len(seventeenFlag) - 5, want: e(replyFlagsTooLong)},
	{name: "ms bad chunk", in: "ms k 3\r\nabcd\r\n", n: 13, want: e(replyBadChunk)},
	{name: "ms quiet bad chunk", in: "ms k 3 q\r\nabcd\r\n", n: 15, want: e(replyBadChunk)},
	{name: "ms too large", in: bigMeta, n: 19, want: Error{Reply: replyTooLarge, Swallow: 2000002}},
	{name: "line too long", in: longLine, want: closeLine, split: 2100},
	{name: "gat line too long", in: longGat, want: closeLine, split: 2100},
	{name: "get after 101 spaces too long", in: spacedGet, want: closeLine, split: 2200},
	{name: "line over small MaxLine", in: "set k 0 0 1 " + strings.Repeat("x", 30) + "\r\nx\r\n", lim: small, want: closeLine, own: true},
	{name: "get line over bound", in: "get " + strings.Repeat("k ", 600), lim: small, want: closeLine, own: true},
	{name: "too many keys", in: "get a b c d\r\n", lim: small, n: line, want: e(replyTooManyKeys), own: true},
	{name: "value over MaxValue", in: "set k 0 0 11 noreply\r\n", lim: small, n: 22, want: Error{Reply: replyTooLarge, NoReply: true, Swallow: 13}, own: true},
	{name: "me unsupported", in: "me k\r\n", n: line, want: e("ERROR"), own: true},
	{name: "slabs unsupported", in: "slabs automove 0\r\n", n: line, want: e("ERROR"), own: true},
}

func TestReadRequestMalformed(t *testing.T) {
	for _, tc := range malformedRequests {
		t.Run(tc.name, func(t *testing.T) {
			var req Request
			in := []byte(tc.in)
			n, err := ReadRequest(in, &req, tc.lim)
			want, wantN := tc.want, tc.n
			if wantN == line {
				wantN = strings.IndexByte(tc.in, '\n') + 1
			}
			if n != wantN || !sameError(err, &want) {
				t.Fatalf("ReadRequest(%.60q) = %d, %#v; want %d, %#v", tc.in, n, err, wantN, &want)
			}
			if len(in) <= 4096 {
				checkPrefixes(t, in, tc.lim)
			}
		})
	}
}
