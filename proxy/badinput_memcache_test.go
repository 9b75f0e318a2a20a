package proxy_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

const (
	badFormat = "CLIENT_ERROR bad command line format\r\n"
	badChunk  = "CLIENT_ERROR bad data chunk\r\n"
)

// memcacheBadCases are malformed and hostile memcache inputs with memcached
// 1.6's own answers. Cases not marked same are where the proxy deliberately
// differs (see codec/memcache.ReadRequest): it refuses a value over its
// limit at once instead of after swallowing it; it refuses a byte count
// over 2^31, which memcached 1.6.18 truncates to 32 bits (so it reads
// "4294967296" as 0 and answers "bad data chunk"); it closes a client
// whose command line is over the limit, where memcached reads on; and it
// refuses a get of more keys than max_args.
var memcacheBadCases = append(memcacheBadLines, memcacheResyncCases()...)

// memcacheBadLines are single malformed requests, each followed by the
// follow-up request or, when held, the rest.
var memcacheBadLines = []badCase{
	{name: "unknown command", in: []byte("foo bar\r\n"), want: "ERROR\r\n", end: endOpen, same: true},
	{name: "binary garbage", in: []byte("\x00\xff\xfe\r\n"), want: "ERROR\r\n", end: endOpen, same: true},
	{name: "empty line", in: []byte("\r\n"), want: "ERROR\r\n", end: endOpen, same: true},
	{name: "one letter", in: []byte("x\r\n"), want: "ERROR\r\n", end: endOpen, same: true},
	{name: "upper case command", in: []byte("GET k\r\n"), want: "ERROR\r\n", end: endOpen, same: true},
	{name: "get without key", in: []byte("get\r\n"), want: "ERROR\r\n", end: endOpen, same: true},
	{name: "data longer than its count", in: []byte("set ftm1 0 0 3\r\nabcdef\r\n"), want: badChunk + "ERROR\r\n", end: endOpen, same: true},
	{name: "no CRLF after data", in: []byte("set ftm2 0 0 3\r\nabcXY"), want: badChunk, end: endOpen, same: true},
	{name: "LF-only data", in: []byte("set ftm3 0 0 3\nabc\n\r\n"), want: badChunk + "ERROR\r\n", end: endOpen, same: true},
	{name: "set key of 251 bytes", in: []byte("set " + strings.Repeat("k", 251) + " 0 0 1\r\nx\r\n"), want: badFormat + "ERROR\r\n", end: endOpen, same: true},
	{name: "get key of 251 bytes", in: []byte("get " + strings.Repeat("k", 251) + "\r\n"), want: badFormat, end: endOpen, same: true},
	{name: "get key of 250 bytes", in: []byte("get " + strings.Repeat("k", 250) + "\r\n"), want: "END\r\n", end: endOpen, same: true},
	{name: "mg key of 251 bytes", in: []byte("mg " + strings.Repeat("k", 251) + " v\r\n"), want: badFormat, end: endOpen, same: true},
	{name: "byte count 2^32", in: []byte("set ftm4 0 0 4294967296\r\nx\r\n"), want: badFormat + "ERROR\r\n", end: endOpen},
	{name: "negative byte count", in: []byte("set ftm5 0 0 -1\r\nx\r\n"), want: badFormat + "ERROR\r\n", end: endOpen, same: true},
	{name: "non-numeric byte count", in: []byte("set ftm5 0 0 abc\r\nx\r\n"), want: badFormat + "ERROR\r\n", end: endOpen, same: true},
	{name: "non-numeric flags", in: []byte("set ftm5 abc 0 1\r\nx\r\n"), want: badFormat + "ERROR\r\n", end: endOpen, same: true},
	{name: "non-numeric exptime", in: []byte("set ftm5 0 abc 1\r\nx\r\n"), want: badFormat + "ERROR\r\n", end: endOpen, same: true},
	{name: "too few tokens", in: []byte("set ftm5 0 0\r\n"), want: "ERROR\r\n", end: endOpen, same: true},
	{name: "too many tokens", in: []byte("set ftm5 0 0 1 2 3 4\r\nx\r\n"), want: "ERROR\r\nERROR\r\n", end: endOpen, same: true},
	{name: "bad data with noreply", in: []byte("set ftm5 0 0 1 noreply\r\nxyz\r\n"), want: "ERROR\r\n", end: endOpen, same: true},
	{name: "incr by a word", in: []byte("incr ftm6 abc\r\n"), want: "CLIENT_ERROR invalid numeric delta argument\r\n", end: endOpen, same: true},
	{name: "incr by 2^64", in: []byte("incr ftm6 18446744073709551616\r\n"), want: "CLIENT_ERROR invalid numeric delta argument\r\n", end: endOpen, same: true},
	{name: "incr of text", in: []byte("set ftm7 0 0 3\r\nabc\r\nincr ftm7 1\r\n"), want: "STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n", end: endOpen, same: true},
	{name: "delete with a time", in: []byte("delete ftm8 1\r\n"), want: "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n", end: endOpen, same: true},
	{name: "delete with time 0", in: []byte("delete ftm8 0\r\n"), want: "NOT_FOUND\r\n", end: endOpen, same: true},
	{name: "touch with a word", in: []byte("touch ftm8 abc\r\n"), want: "CLIENT_ERROR invalid exptime argument\r\n", end: endOpen, same: true},
	{name: "cas without unique", in: []byte("cas ftm8 0 0 1\r\nx\r\n"), want: "ERROR\r\nERROR\r\n", end: endOpen, same: true},
	{name: "cas with a word", in: []byte("cas ftm8 0 0 1 abc\r\nx\r\n"), want: badFormat + "ERROR\r\n", end: endOpen, same: true},
	{name: "verbosity without level", in: []byte("verbosity\r\n"), want: "ERROR\r\n", end: endOpen, same: true},
	{name: "ms with a word length", in: []byte("ms ftm8 abc\r\nx\r\n"), want: badFormat + "ERROR\r\n", end: endOpen, same: true},
	{name: "ms with a bad flag", in: []byte("ms ftm8 2 Zq\r\nxy\r\n"), want: "CLIENT_ERROR invalid flag\r\n", end: endOpen, same: true},
	{name: "3000-byte line without newline", in: repeat("a", 3000), end: endClose, same: true},
	{name: "3000-byte get line, held", in: append([]byte("get "), repeat("a", 3000)...), end: endHold, cont: []byte("\r\n"), contWant: badFormat, same: true},
	{name: "half a value, held", in: []byte("set ftm9 0 0 5\r\nab"), end: endHold, cont: []byte("cde\r\n"), contWant: "STORED\r\n", same: true},
	{name: "2 GB value announced", in: []byte("set ftm10 0 0 2000000000\r\nx\r\n"), want: "SERVER_ERROR object too large for cache\r\n", end: endHold},
	{name: "truncated value, then close", in: []byte("set ftm11 0 0 10\r\nabc"), end: endHangup, same: true},
}

// withVersion ends a request with "version", whose answer shows where
// the stream was resynchronised (or a value swallowed it).
func withVersion(req string) []byte { return []byte(req + "version\r\n") }

// noValue is what withVersion("get <key>\r\n") answers for a key that
// holds nothing.
const noValue = "END\r\n" + anyVersion

// memcacheResyncCases end their input with "version" (but for bare ones)
// and then read their key back, so each shows both where memcached
// resynchronised the stream and what it stored meanwhile.
func memcacheResyncCases() []badCase {
	k251 := strings.Repeat("k", 251)
	big := strings.Repeat("z", 2_000_000)
	tooLarge := "SERVER_ERROR object too large for cache\r\n"
	badDelta := "CLIENT_ERROR invalid numeric delta argument\r\n"
	badExptime := "CLIENT_ERROR invalid exptime argument\r\n"
	badDelete := "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
	badFlag := "CLIENT_ERROR invalid flag\r\n"
	getKeys := func(n int) string { return "get " + strings.Join(numberedKeys("many", n), " ") + "\r\n" }
	then := func(key string) []byte { return withVersion("get " + key + "\r\n") }
	return []badCase{
		{name: "byte count too short", in: withVersion("set bad:short 0 0 2\r\nabcd\r\n"),
			want: badChunk + "ERROR\r\n" + anyVersion, end: endOpen, cont: then("bad:short"), contWant: noValue, same: true},
		{name: "byte count too long", in: withVersion("set bad:long 0 0 10\r\nabc\r\n"),
			want: badChunk + "ERROR\r\n", end: endOpen, cont: then("bad:long"), contWant: noValue, same: true},
		{name: "byte count too long, bare", in: []byte("set bad:long2 0 0 10\r\nabc\r\n"),
			end: endHold, cont: then("bad:long2"), contWant: badChunk + "ERROR\r\n" + anyVersion, same: true},
		{name: "missing crlf after data", in: withVersion("set bad:nocrlf 0 0 3\r\nabcXYget bad:nocrlf\r\n"),
			want: badChunk + "END\r\n" + anyVersion, end: endOpen, cont: then("bad:nocrlf"), contWant: noValue, same: true},
		{name: "missing crlf, next request follows", in: withVersion("set bad:nocrlf2 0 0 3\r\nabc"),
			want: badChunk + "ERROR\r\n", end: endOpen, cont: then("bad:nocrlf2"), contWant: noValue, same: true},
		{name: "data ends in lf only", in: withVersion("set bad:lf 0 0 3\r\nabc\nx\r\n"),
			want: badChunk + "ERROR\r\n" + anyVersion, end: endOpen, cont: then("bad:lf"), contWant: noValue, same: true},
		{name: "get key of 251 bytes, then version", in: withVersion("get " + k251 + "\r\n"),
			want: badFormat + anyVersion, end: endOpen, cont: then("bad:k"), contWant: noValue, same: true},
		{name: "set key of 251 bytes, then version", in: withVersion("set " + k251 + " 0 0 1\r\nx\r\n"),
			want: badFormat + "ERROR\r\n" + anyVersion, end: endOpen, cont: then("bad:k"), contWant: noValue, same: true},
		{name: "mg key of 251 bytes, then version", in: withVersion("mg " + k251 + " v\r\n"),
			want: badFormat + anyVersion, end: endOpen, cont: then("bad:k"), contWant: noValue, same: true},
		{name: "unknown command, then version", in: withVersion("foo bar\r\n"),
			want: "ERROR\r\n" + anyVersion, end: endOpen, cont: then("bad:u"), contWant: noValue, same: true},
		{name: "upper case command, then version", in: withVersion("GET bad:u\r\n"),
			want: "ERROR\r\n" + anyVersion, end: endOpen, cont: then("bad:u"), contWant: noValue, same: true},
		{name: "empty line, then version", in: withVersion("\r\n"),
			want: "ERROR\r\n" + anyVersion, end: endOpen, cont: then("bad:e"), contWant: noValue, same: true},
		{name: "bare lf", in: withVersion("\n"),
			want: "ERROR\r\n" + anyVersion, end: endOpen, cont: then("bad:e"), contWant: noValue, same: true},
		{name: "line over the limit", in: []byte(strings.Repeat("x", 3000)), end: endClose, same: true},
		{name: "get line over 2048 bytes", in: withVersion(getKeys(400)),
			want: noValue, end: endOpen, cont: then("many:3"), contWant: noValue, same: true},
		{name: "non-numeric length", in: withVersion("set bad:nn 0 0 abc\r\nabc\r\n"),
			want: badFormat + "ERROR\r\n" + anyVersion, end: endOpen, cont: then("bad:nn"), contWant: noValue, same: true},
		{name: "negative length", in: withVersion("set bad:neg 0 0 -1\r\nx\r\n"),
			want: badFormat + "ERROR\r\n" + anyVersion, end: endOpen, cont: then("bad:neg"), contWant: noValue, same: true},
		{name: "non-numeric flags, then version", in: withVersion("set bad:fl x 0 1\r\nx\r\n"),
			want: badFormat + "ERROR\r\n" + anyVersion, end: endOpen, cont: then("bad:fl"), contWant: noValue, same: true},
		{name: "bad exptime", in: withVersion("set bad:ex 0 soon 1\r\nx\r\ntouch bad:ex soon\r\ngat soon bad:ex\r\n"),
			want: badFormat + "ERROR\r\n" + badExptime + badExptime + anyVersion, end: endOpen, cont: then("bad:ex"), contWant: noValue, same: true},
		{name: "bad delta", in: withVersion("incr bad:d x\r\ndecr bad:d -1\r\n"),
			want: badDelta + badDelta + anyVersion, end: endOpen, cont: then("bad:d"), contWant: noValue, same: true},
		{name: "bad delete", in: withVersion("delete bad:del 5\r\ndelete bad:del 0 x\r\n"),
			want: badDelete + badDelete + anyVersion, end: endOpen, cont: then("bad:del"), contWant: noValue, same: true},
		{name: "too few tokens, then version", in: withVersion("set bad:t 0 0\r\nincr bad:t\r\nget\r\ntouch bad:t\r\n"),
			want: "ERROR\r\nERROR\r\nERROR\r\nERROR\r\n" + anyVersion, end: endOpen, cont: then("bad:t"), contWant: noValue, same: true},
		{name: "too many tokens, then version", in: withVersion("set bad:t 0 0 1 noreply extra\r\nx\r\n"),
			want: "ERROR\r\nERROR\r\n" + anyVersion, end: endOpen, cont: then("bad:t"), contWant: noValue, same: true},
		{name: "nul in the line", in: withVersion("get bad:n\x00tail\r\n"),
			want: noValue, end: endOpen, cont: then("bad:n"), contWant: noValue, same: true},
		{name: "bad cas unique", in: withVersion("cas bad:cas 0 0 1 x\r\nx\r\n"),
			want: badFormat + "ERROR\r\n" + anyVersion, end: endOpen, cont: then("bad:cas"), contWant: noValue, same: true},
		{name: "ms without length", in: withVersion("ms bad:ms\r\n"),
			want: badFormat + anyVersion, end: endOpen, cont: then("bad:ms"), contWant: noValue, same: true},
		{name: "ms bad length", in: withVersion("ms bad:ms x\r\nab\r\n"),
			want: badFormat + "ERROR\r\n" + anyVersion, end: endOpen, cont: then("bad:ms"), contWant: noValue, same: true},
		{name: "ms bad flag", in: withVersion("ms bad:ms 2 !\r\nab\r\n"),
			want: badFlag + anyVersion, end: endOpen, cont: then("bad:ms"), contWant: noValue, same: true},
		{name: "ms byte count too short", in: withVersion("ms bad:ms 2\r\nabcd\r\n"),
			want: badChunk + "ERROR\r\n" + anyVersion, end: endOpen, cont: then("bad:ms"), contWant: noValue, same: true},
		{name: "mg bad flag", in: withVersion("mg bad:mg v !\r\n"),
			want: badFlag + anyVersion, end: endOpen, cont: then("bad:mg"), contWant: noValue, same: true},
		{name: "value over the limit", in: withVersion("set bad:big 0 0 2000000\r\n" + big + "\r\n"),
			want: tooLarge + anyVersion, end: endOpen, cont: then("bad:big"), contWant: noValue, same: true},
		{name: "value over the limit, noreply", in: withVersion("set bad:big2 0 0 2000000 noreply\r\n" + big + "\r\n"),
			want: anyVersion, end: endOpen, cont: then("bad:big2"), contWant: noValue, same: true},
		{name: "value over the limit replaces", in: withVersion("set bad:big3 0 0 1\r\nx\r\nappend bad:big3 0 0 2000000\r\n" + big + "\r\n"),
			want: "STORED\r\n" + tooLarge + anyVersion, end: endOpen, cont: then("bad:big3"),
			contWant: "VALUE bad:big3 0 1\r\nx\r\nEND\r\n" + anyVersion, same: true},
		{name: "quit", in: withVersion("quit\r\n"), end: endClose, same: true},
		// memcached reads on after a command line over the limit; the
		// proxy closes the client.
		{name: "command line over the limit", in: withVersion("set " + strings.Repeat("y", 3000) + " 0 0 1\r\nx\r\n"), end: endClose},
		{name: "too many keys", in: withVersion(getKeys(1<<16 + 1)), want: "CLIENT_ERROR too many keys\r\n" + anyVersion, end: endOpen},
	}
}

// TestBadInputMemcache sends each malformed input to the proxy (and, where
// the answer is memcached's, to memcached too): each gets memcached's exact
// reply or a clean close, and leaves the stream and the stored values as
// memcached does; a client connected all along and a new client are served
// after each, and a client busy all the while does not notice; nothing of
// a truncated value is stored.
func TestBadInputMemcache(t *testing.T) {
	runParallel(t)
	f := startFixture(t, pool{memcache: true, keys: []string{"timeout: 2000"}}, startMemcacheBackends(t, 2))
	ref := testservers.Memcached(t)
	p := badProto{follow: "get ftnokey\r\n", followWant: "END\r\n", bystander: memcacheBystander}
	runBadTable(t, f.addr, ref.Addr, p, memcacheBadCases)
	c := dialClient(t, f.addr)
	if err := c.exchange("get ftm11 ftm10\r\n", "END\r\n"); err != nil {
		t.Errorf("a cut-off value was stored: %v", err)
	}
}

// memcacheBystander sets key to a value made of i and reads it back.
func memcacheBystander(c *clientConn, key string, i int) error {
	val := fmt.Sprint("value-", i)
	if err := c.exchange(fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", key, len(val), val), "STORED\r\n"); err != nil {
		return err
	}
	return c.exchange("get "+key+"\r\n", fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", key, len(val), val))
}
