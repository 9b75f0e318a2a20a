package proxy_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/internal/proxytest"
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
var memcacheBadLines = []proxytest.BadCase{
	{Name: "unknown command", In: []byte("foo bar\r\n"), Want: "ERROR\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "binary garbage", In: []byte("\x00\xff\xfe\r\n"), Want: "ERROR\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "empty line", In: []byte("\r\n"), Want: "ERROR\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "one letter", In: []byte("x\r\n"), Want: "ERROR\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "upper case command", In: []byte("GET k\r\n"), Want: "ERROR\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "get without key", In: []byte("get\r\n"), Want: "ERROR\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "data longer than its count", In: []byte("set ftm1 0 0 3\r\nabcdef\r\n"), Want: badChunk + "ERROR\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "no CRLF after data", In: []byte("set ftm2 0 0 3\r\nabcXY"), Want: badChunk, End: proxytest.EndOpen, Same: true},
	{Name: "LF-only data", In: []byte("set ftm3 0 0 3\nabc\n\r\n"), Want: badChunk + "ERROR\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "set key of 251 bytes", In: []byte("set " + strings.Repeat("k", 251) + " 0 0 1\r\nx\r\n"), Want: badFormat + "ERROR\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "get key of 251 bytes", In: []byte("get " + strings.Repeat("k", 251) + "\r\n"), Want: badFormat, End: proxytest.EndOpen, Same: true},
	{Name: "get key of 250 bytes", In: []byte("get " + strings.Repeat("k", 250) + "\r\n"), Want: "END\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "mg key of 251 bytes", In: []byte("mg " + strings.Repeat("k", 251) + " v\r\n"), Want: badFormat, End: proxytest.EndOpen, Same: true},
	{Name: "byte count 2^32", In: []byte("set ftm4 0 0 4294967296\r\nx\r\n"), Want: badFormat + "ERROR\r\n", End: proxytest.EndOpen},
	{Name: "negative byte count", In: []byte("set ftm5 0 0 -1\r\nx\r\n"), Want: badFormat + "ERROR\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "non-numeric byte count", In: []byte("set ftm5 0 0 abc\r\nx\r\n"), Want: badFormat + "ERROR\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "non-numeric flags", In: []byte("set ftm5 abc 0 1\r\nx\r\n"), Want: badFormat + "ERROR\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "non-numeric exptime", In: []byte("set ftm5 0 abc 1\r\nx\r\n"), Want: badFormat + "ERROR\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "too few tokens", In: []byte("set ftm5 0 0\r\n"), Want: "ERROR\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "too many tokens", In: []byte("set ftm5 0 0 1 2 3 4\r\nx\r\n"), Want: "ERROR\r\nERROR\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "bad data with noreply", In: []byte("set ftm5 0 0 1 noreply\r\nxyz\r\n"), Want: "ERROR\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "incr by a word", In: []byte("incr ftm6 abc\r\n"), Want: "CLIENT_ERROR invalid numeric delta argument\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "incr by 2^64", In: []byte("incr ftm6 18446744073709551616\r\n"), Want: "CLIENT_ERROR invalid numeric delta argument\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "incr of text", In: []byte("set ftm7 0 0 3\r\nabc\r\nincr ftm7 1\r\n"), Want: "STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "delete with a time", In: []byte("delete ftm8 1\r\n"), Want: "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "delete with time 0", In: []byte("delete ftm8 0\r\n"), Want: "NOT_FOUND\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "touch with a word", In: []byte("touch ftm8 abc\r\n"), Want: "CLIENT_ERROR invalid exptime argument\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "cas without unique", In: []byte("cas ftm8 0 0 1\r\nx\r\n"), Want: "ERROR\r\nERROR\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "cas with a word", In: []byte("cas ftm8 0 0 1 abc\r\nx\r\n"), Want: badFormat + "ERROR\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "verbosity without level", In: []byte("verbosity\r\n"), Want: "ERROR\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "ms with a word length", In: []byte("ms ftm8 abc\r\nx\r\n"), Want: badFormat + "ERROR\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "ms with a bad flag", In: []byte("ms ftm8 2 Zq\r\nxy\r\n"), Want: "CLIENT_ERROR invalid flag\r\n", End: proxytest.EndOpen, Same: true},
	{Name: "3000-byte line without newline", In: proxytest.Repeat("a", 3000), End: proxytest.EndClose, Same: true},
	{Name: "3000-byte get line, held", In: append([]byte("get "), proxytest.Repeat("a", 3000)...), End: proxytest.EndHold, Cont: []byte("\r\n"), ContWant: badFormat, Same: true},
	{Name: "half a value, held", In: []byte("set ftm9 0 0 5\r\nab"), End: proxytest.EndHold, Cont: []byte("cde\r\n"), ContWant: "STORED\r\n", Same: true},
	{Name: "2 GB value announced", In: []byte("set ftm10 0 0 2000000000\r\nx\r\n"), Want: "SERVER_ERROR object too large for cache\r\n", End: proxytest.EndHold},
	{Name: "truncated value, then close", In: []byte("set ftm11 0 0 10\r\nabc"), End: proxytest.EndHangup, Same: true},
}

// withVersion ends a request with "version", whose answer shows where
// the stream was resynchronised (or a value swallowed it).
func withVersion(req string) []byte { return []byte(req + "version\r\n") }

// noValue is what withVersion("get <key>\r\n") answers for a key that
// holds nothing.
const noValue = "END\r\n" + proxytest.AnyVersion

// memcacheResyncCases end their input with "version" (but for bare ones)
// and then read their key back, so each shows both where memcached
// resynchronised the stream and what it stored meanwhile.
func memcacheResyncCases() []proxytest.BadCase {
	k251 := strings.Repeat("k", 251)
	big := strings.Repeat("z", 2_000_000)
	tooLarge := "SERVER_ERROR object too large for cache\r\n"
	badDelta := "CLIENT_ERROR invalid numeric delta argument\r\n"
	badExptime := "CLIENT_ERROR invalid exptime argument\r\n"
	badDelete := "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
	badFlag := "CLIENT_ERROR invalid flag\r\n"
	getKeys := func(n int) string { return "get " + strings.Join(proxytest.NumberedKeys("many", n), " ") + "\r\n" }
	then := func(key string) []byte { return withVersion("get " + key + "\r\n") }
	return []proxytest.BadCase{
		{Name: "byte count too short", In: withVersion("set bad:short 0 0 2\r\nabcd\r\n"),
			Want: badChunk + "ERROR\r\n" + proxytest.AnyVersion, End: proxytest.EndOpen, Cont: then("bad:short"), ContWant: noValue, Same: true},
		{Name: "byte count too long", In: withVersion("set bad:long 0 0 10\r\nabc\r\n"),
			Want: badChunk + "ERROR\r\n", End: proxytest.EndOpen, Cont: then("bad:long"), ContWant: noValue, Same: true},
		{Name: "byte count too long, bare", In: []byte("set bad:long2 0 0 10\r\nabc\r\n"),
			End: proxytest.EndHold, Cont: then("bad:long2"), ContWant: badChunk + "ERROR\r\n" + proxytest.AnyVersion, Same: true},
		{Name: "missing crlf after data", In: withVersion("set bad:nocrlf 0 0 3\r\nabcXYget bad:nocrlf\r\n"),
			Want: badChunk + "END\r\n" + proxytest.AnyVersion, End: proxytest.EndOpen, Cont: then("bad:nocrlf"), ContWant: noValue, Same: true},
		{Name: "missing crlf, next request follows", In: withVersion("set bad:nocrlf2 0 0 3\r\nabc"),
			Want: badChunk + "ERROR\r\n", End: proxytest.EndOpen, Cont: then("bad:nocrlf2"), ContWant: noValue, Same: true},
		{Name: "data ends in lf only", In: withVersion("set bad:lf 0 0 3\r\nabc\nx\r\n"),
			Want: badChunk + "ERROR\r\n" + proxytest.AnyVersion, End: proxytest.EndOpen, Cont: then("bad:lf"), ContWant: noValue, Same: true},
		{Name: "get key of 251 bytes, then version", In: withVersion("get " + k251 + "\r\n"),
			Want: badFormat + proxytest.AnyVersion, End: proxytest.EndOpen, Cont: then("bad:k"), ContWant: noValue, Same: true},
		{Name: "set key of 251 bytes, then version", In: withVersion("set " + k251 + " 0 0 1\r\nx\r\n"),
			Want: badFormat + "ERROR\r\n" + proxytest.AnyVersion, End: proxytest.EndOpen, Cont: then("bad:k"), ContWant: noValue, Same: true},
		{Name: "mg key of 251 bytes, then version", In: withVersion("mg " + k251 + " v\r\n"),
			Want: badFormat + proxytest.AnyVersion, End: proxytest.EndOpen, Cont: then("bad:k"), ContWant: noValue, Same: true},
		{Name: "unknown command, then version", In: withVersion("foo bar\r\n"),
			Want: "ERROR\r\n" + proxytest.AnyVersion, End: proxytest.EndOpen, Cont: then("bad:u"), ContWant: noValue, Same: true},
		{Name: "upper case command, then version", In: withVersion("GET bad:u\r\n"),
			Want: "ERROR\r\n" + proxytest.AnyVersion, End: proxytest.EndOpen, Cont: then("bad:u"), ContWant: noValue, Same: true},
		{Name: "empty line, then version", In: withVersion("\r\n"),
			Want: "ERROR\r\n" + proxytest.AnyVersion, End: proxytest.EndOpen, Cont: then("bad:e"), ContWant: noValue, Same: true},
		{Name: "bare lf", In: withVersion("\n"),
			Want: "ERROR\r\n" + proxytest.AnyVersion, End: proxytest.EndOpen, Cont: then("bad:e"), ContWant: noValue, Same: true},
		{Name: "line over the limit", In: []byte(strings.Repeat("x", 3000)), End: proxytest.EndClose, Same: true},
		{Name: "get line over 2048 bytes", In: withVersion(getKeys(400)),
			Want: noValue, End: proxytest.EndOpen, Cont: then("many:3"), ContWant: noValue, Same: true},
		{Name: "non-numeric length", In: withVersion("set bad:nn 0 0 abc\r\nabc\r\n"),
			Want: badFormat + "ERROR\r\n" + proxytest.AnyVersion, End: proxytest.EndOpen, Cont: then("bad:nn"), ContWant: noValue, Same: true},
		{Name: "negative length", In: withVersion("set bad:neg 0 0 -1\r\nx\r\n"),
			Want: badFormat + "ERROR\r\n" + proxytest.AnyVersion, End: proxytest.EndOpen, Cont: then("bad:neg"), ContWant: noValue, Same: true},
		{Name: "non-numeric flags, then version", In: withVersion("set bad:fl x 0 1\r\nx\r\n"),
			Want: badFormat + "ERROR\r\n" + proxytest.AnyVersion, End: proxytest.EndOpen, Cont: then("bad:fl"), ContWant: noValue, Same: true},
		{Name: "bad exptime", In: withVersion("set bad:ex 0 soon 1\r\nx\r\ntouch bad:ex soon\r\ngat soon bad:ex\r\n"),
			Want: badFormat + "ERROR\r\n" + badExptime + badExptime + proxytest.AnyVersion, End: proxytest.EndOpen, Cont: then("bad:ex"), ContWant: noValue, Same: true},
		{Name: "bad delta", In: withVersion("incr bad:d x\r\ndecr bad:d -1\r\n"),
			Want: badDelta + badDelta + proxytest.AnyVersion, End: proxytest.EndOpen, Cont: then("bad:d"), ContWant: noValue, Same: true},
		{Name: "bad delete", In: withVersion("delete bad:del 5\r\ndelete bad:del 0 x\r\n"),
			Want: badDelete + badDelete + proxytest.AnyVersion, End: proxytest.EndOpen, Cont: then("bad:del"), ContWant: noValue, Same: true},
		{Name: "too few tokens, then version", In: withVersion("set bad:t 0 0\r\nincr bad:t\r\nget\r\ntouch bad:t\r\n"),
			Want: "ERROR\r\nERROR\r\nERROR\r\nERROR\r\n" + proxytest.AnyVersion, End: proxytest.EndOpen, Cont: then("bad:t"), ContWant: noValue, Same: true},
		{Name: "too many tokens, then version", In: withVersion("set bad:t 0 0 1 noreply extra\r\nx\r\n"),
			Want: "ERROR\r\nERROR\r\n" + proxytest.AnyVersion, End: proxytest.EndOpen, Cont: then("bad:t"), ContWant: noValue, Same: true},
		{Name: "nul in the line", In: withVersion("get bad:n\x00tail\r\n"),
			Want: noValue, End: proxytest.EndOpen, Cont: then("bad:n"), ContWant: noValue, Same: true},
		{Name: "bad cas unique", In: withVersion("cas bad:cas 0 0 1 x\r\nx\r\n"),
			Want: badFormat + "ERROR\r\n" + proxytest.AnyVersion, End: proxytest.EndOpen, Cont: then("bad:cas"), ContWant: noValue, Same: true},
		{Name: "ms without length", In: withVersion("ms bad:ms\r\n"),
			Want: badFormat + proxytest.AnyVersion, End: proxytest.EndOpen, Cont: then("bad:ms"), ContWant: noValue, Same: true},
		{Name: "ms bad length", In: withVersion("ms bad:ms x\r\nab\r\n"),
			Want: badFormat + "ERROR\r\n" + proxytest.AnyVersion, End: proxytest.EndOpen, Cont: then("bad:ms"), ContWant: noValue, Same: true},
		{Name: "ms bad flag", In: withVersion("ms bad:ms 2 !\r\nab\r\n"),
			Want: badFlag + proxytest.AnyVersion, End: proxytest.EndOpen, Cont: then("bad:ms"), ContWant: noValue, Same: true},
		{Name: "ms byte count too short", In: withVersion("ms bad:ms 2\r\nabcd\r\n"),
			Want: badChunk + "ERROR\r\n" + proxytest.AnyVersion, End: proxytest.EndOpen, Cont: then("bad:ms"), ContWant: noValue, Same: true},
		{Name: "mg bad flag", In: withVersion("mg bad:mg v !\r\n"),
			Want: badFlag + proxytest.AnyVersion, End: proxytest.EndOpen, Cont: then("bad:mg"), ContWant: noValue, Same: true},
		{Name: "value over the limit", In: withVersion("set bad:big 0 0 2000000\r\n" + big + "\r\n"),
			Want: tooLarge + proxytest.AnyVersion, End: proxytest.EndOpen, Cont: then("bad:big"), ContWant: noValue, Same: true},
		{Name: "value over the limit, noreply", In: withVersion("set bad:big2 0 0 2000000 noreply\r\n" + big + "\r\n"),
			Want: proxytest.AnyVersion, End: proxytest.EndOpen, Cont: then("bad:big2"), ContWant: noValue, Same: true},
		{Name: "value over the limit replaces", In: withVersion("set bad:big3 0 0 1\r\nx\r\nappend bad:big3 0 0 2000000\r\n" + big + "\r\n"),
			Want: "STORED\r\n" + tooLarge + proxytest.AnyVersion, End: proxytest.EndOpen, Cont: then("bad:big3"),
			ContWant: "VALUE bad:big3 0 1\r\nx\r\nEND\r\n" + proxytest.AnyVersion, Same: true},
		{Name: "quit", In: withVersion("quit\r\n"), End: proxytest.EndClose, Same: true},
		// memcached reads on after a command line over the limit; the
		// proxy closes the client.
		{Name: "command line over the limit", In: withVersion("set " + strings.Repeat("y", 3000) + " 0 0 1\r\nx\r\n"), End: proxytest.EndClose},
		{Name: "too many keys", In: withVersion(getKeys(1<<16 + 1)), Want: "CLIENT_ERROR too many keys\r\n" + proxytest.AnyVersion, End: proxytest.EndOpen},
	}
}

// TestBadInputMemcache sends each malformed input to the proxy (and, where
// the answer is memcached's, to memcached too): each gets memcached's exact
// reply or a clean close, and leaves the stream and the stored values as
// memcached does; a client connected all along and a new client are served
// after each, and a client busy all the while does not notice; nothing of
// a truncated value is stored.
func TestBadInputMemcache(t *testing.T) {
	proxytest.RunParallel(t)
	f := proxytest.StartFixture(t, proxytest.Pool{Memcache: true, Keys: []string{"timeout: 2000"}}, proxytest.StartMemcacheBackends(t, 2))
	ref := testservers.Memcached(t)
	p := proxytest.BadProto{Follow: "get ftnokey\r\n", FollowWant: "END\r\n", Bystander: memcacheBystander}
	proxytest.RunBadTable(t, f.Addr, ref.Addr, p, memcacheBadCases)
	c := proxytest.Dial(t, f.Addr)
	if err := c.Exchange("get ftm11 ftm10\r\n", "END\r\n"); err != nil {
		t.Errorf("a cut-off value was stored: %v", err)
	}
}

// memcacheBystander sets key to a value made of i and reads it back.
func memcacheBystander(c *proxytest.Conn, key string, i int) error {
	val := fmt.Sprint("value-", i)
	if err := c.Exchange(fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", key, len(val), val), "STORED\r\n"); err != nil {
		return err
	}
	return c.Exchange("get "+key+"\r\n", fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", key, len(val), val))
}
