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
// 1.6's own answers. Cases not marked same are where the proxy differs: it
// refuses a value over its limit at once instead of after swallowing it
// (see codec/memcache.ReadRequest), and it refuses a byte count over
// 2^31, which memcached 1.6.18 truncates to 32 bits (so it reads
// "4294967296" as 0 and answers "bad data chunk").
var memcacheBadCases = []badCase{
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

// TestBadInputMemcache sends each malformed input to the proxy (and, where
// the answer is memcached's, to memcached too): each gets memcached's exact
// reply or a clean close; a client connected all along and a new client
// are served after each; nothing of a truncated value is stored.
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
