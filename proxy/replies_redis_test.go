package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// scriptStep is one command of a scripted comparison; unordered marks an
// array reply whose element order Redis does not define (sets).
type scriptStep struct {
	args      []string
	unordered bool
}

func cmd(args ...string) scriptStep { return scriptStep{args: args} }

func unordered(args ...string) scriptStep { return scriptStep{args: args, unordered: true} }

// sameReplyScript covers every data type and the multi-key commands the
// proxy splits, with keys spread over the shards, missing keys, duplicates
// and hash tags.
var sameReplyScript = []scriptStep{
	// Strings.
	cmd("SET", "s:1", "one"), cmd("GET", "s:1"), cmd("GET", "s:missing"),
	cmd("SET", "s:2", "two", "NX"), cmd("SET", "s:2", "deux", "NX"), cmd("SET", "s:2", "zwei", "XX", "GET"),
	cmd("APPEND", "s:2", "!"), cmd("STRLEN", "s:2"), cmd("GETRANGE", "s:2", "1", "3"), cmd("SETRANGE", "s:2", "1", "XY"),
	cmd("INCR", "n:1"), cmd("INCRBY", "n:1", "41"), cmd("DECR", "n:1"), cmd("DECRBY", "n:1", "2"),
	cmd("INCRBYFLOAT", "n:f", "1.5"), cmd("INCR", "s:1"), cmd("GETSET", "s:3", "three"), cmd("GETDEL", "s:3"),
	cmd("SETNX", "s:4", "four"), cmd("SETEX", "s:5", "100", "five"), cmd("TTL", "s:5"), cmd("GETEX", "s:5", "PERSIST"),
	cmd("TTL", "s:5"), cmd("TYPE", "s:5"), cmd("OBJECT", "ENCODING", "n:1"), cmd("SUBSTR", "s:1", "0", "1"),
	// TTL commands.
	cmd("EXPIRE", "s:4", "1000"), cmd("TTL", "s:4"), cmd("PERSIST", "s:4"), cmd("TTL", "s:4"), cmd("TTL", "s:missing"),
	cmd("EXPIREAT", "s:4", "4102444800"), cmd("EXPIRETIME", "s:4"), cmd("PEXPIREAT", "s:1", "4102444800000"),
	cmd("PEXPIRETIME", "s:1"), cmd("EXPIRE", "s:missing", "10"),
	// Hashes.
	cmd("HSET", "h:1", "a", "1", "b", "2", "c", "3"), cmd("HGET", "h:1", "b"), cmd("HMGET", "h:1", "a", "x", "c"),
	cmd("HGETALL", "h:1"), cmd("HDEL", "h:1", "c", "x"), cmd("HLEN", "h:1"), cmd("HEXISTS", "h:1", "a"),
	cmd("HINCRBY", "h:1", "a", "10"), cmd("HINCRBYFLOAT", "h:1", "f", "0.25"), cmd("HKEYS", "h:1"), cmd("HVALS", "h:1"),
	cmd("HSETNX", "h:1", "a", "x"), cmd("HSTRLEN", "h:1", "a"), cmd("HMSET", "h:2", "x", "y"), cmd("HGET", "s:1", "a"),
	// Lists.
	cmd("RPUSH", "l:1", "a", "b", "c", "d"), cmd("LPUSH", "l:1", "z"), cmd("LRANGE", "l:1", "0", "-1"),
	cmd("LPOP", "l:1"), cmd("RPOP", "l:1"), cmd("LLEN", "l:1"), cmd("LINDEX", "l:1", "1"), cmd("LSET", "l:1", "0", "A"),
	cmd("LINSERT", "l:1", "BEFORE", "b", "ab"), cmd("LPOS", "l:1", "b"), cmd("LREM", "l:1", "0", "ab"),
	cmd("LTRIM", "l:1", "0", "1"), cmd("LRANGE", "l:1", "0", "-1"), cmd("RPUSHX", "l:missing", "x"),
	cmd("RPUSH", "{l}src", "1", "2", "3"), cmd("RPOPLPUSH", "{l}src", "{l}dst"), cmd("LMOVE", "{l}src", "{l}dst", "LEFT", "RIGHT"),
	cmd("LRANGE", "{l}dst", "0", "-1"), cmd("SORT", "{l}src"), cmd("SORT", "{l}dst", "DESC"),
	// Sets.
	cmd("SADD", "set:1", "a", "b", "c", "d"), cmd("SADD", "set:1", "a"), cmd("SCARD", "set:1"), cmd("SISMEMBER", "set:1", "b"),
	cmd("SMISMEMBER", "set:1", "a", "q"), cmd("SREM", "set:1", "d"), unordered("SMEMBERS", "set:1"),
	cmd("SADD", "{s}a", "1", "2", "3"), cmd("SADD", "{s}b", "2", "3", "4"), unordered("SINTER", "{s}a", "{s}b"),
	unordered("SUNION", "{s}a", "{s}b"), unordered("SDIFF", "{s}a", "{s}b"), cmd("SINTERSTORE", "{s}c", "{s}a", "{s}b"),
	cmd("SINTERCARD", "2", "{s}a", "{s}b"), cmd("SMOVE", "{s}a", "{s}b", "1"), unordered("SMEMBERS", "{s}b"),
	// Sorted sets.
	cmd("ZADD", "z:1", "1", "a", "2", "b", "3", "c"), cmd("ZADD", "z:1", "XX", "CH", "5", "a"), cmd("ZCARD", "z:1"),
	cmd("ZRANGE", "z:1", "0", "-1", "WITHSCORES"), cmd("ZINCRBY", "z:1", "1.5", "b"), cmd("ZRANK", "z:1", "c"),
	cmd("ZREVRANK", "z:1", "c"), cmd("ZSCORE", "z:1", "b"), cmd("ZMSCORE", "z:1", "a", "zz"), cmd("ZCOUNT", "z:1", "2", "4"),
	cmd("ZRANGEBYSCORE", "z:1", "-inf", "+inf", "LIMIT", "0", "2"), cmd("ZREVRANGE", "z:1", "0", "0"),
	cmd("ZRANGE", "z:1", "(1", "10", "BYSCORE"), cmd("ZPOPMIN", "z:1"), cmd("ZREM", "z:1", "zz"),
	cmd("ZADD", "{z}a", "1", "x", "2", "y"), cmd("ZADD", "{z}b", "10", "y", "20", "z"),
	cmd("ZUNIONSTORE", "{z}u", "2", "{z}a", "{z}b"), cmd("ZRANGE", "{z}u", "0", "-1", "WITHSCORES"),
	cmd("ZINTER", "2", "{z}a", "{z}b", "WITHSCORES"), cmd("ZRANGESTORE", "{z}r", "{z}u", "0", "1"),
	cmd("ZADD", "z:lex", "0", "a", "0", "b", "0", "c"), cmd("ZRANGEBYLEX", "z:lex", "[b", "+"), cmd("ZLEXCOUNT", "z:lex", "-", "+"),
	// HyperLogLog.
	cmd("PFADD", "hll:1", "a", "b", "c", "a"), cmd("PFCOUNT", "hll:1"), cmd("PFADD", "{h}1", "a", "b"),
	cmd("PFADD", "{h}2", "c", "d"), cmd("PFMERGE", "{h}3", "{h}1", "{h}2"), cmd("PFCOUNT", "{h}3"), cmd("PFCOUNT", "{h}1", "{h}2"),
	// Geo.
	cmd("GEOADD", "geo:1", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"),
	cmd("GEODIST", "geo:1", "Palermo", "Catania", "km"), cmd("GEOPOS", "geo:1", "Palermo", "Nowhere"),
	cmd("GEOHASH", "geo:1", "Catania"), cmd("GEORADIUS", "geo:1", "15", "37", "200", "km", "WITHDIST", "ASC"),
	cmd("GEOSEARCH", "geo:1", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC"),
	cmd("GEORADIUSBYMEMBER", "geo:1", "Palermo", "300", "km", "ASC"),
	// Bitmaps.
	cmd("SETBIT", "bm:1", "7", "1"), cmd("SETBIT", "bm:1", "100", "1"), cmd("GETBIT", "bm:1", "7"), cmd("BITCOUNT", "bm:1"),
	cmd("BITPOS", "bm:1", "1"), cmd("BITFIELD", "bf:1", "SET", "u8", "0", "200", "GET", "u8", "0", "OVERFLOW", "SAT", "INCRBY", "u8", "0", "100"),
	cmd("SET", "{b}1", "abc"), cmd("SET", "{b}2", "abd"), cmd("BITOP", "AND", "{b}3", "{b}1", "{b}2"), cmd("GET", "{b}3"),
	// Scripts with all keys on one server.
	cmd("EVAL", "return {KEYS[1], KEYS[2], ARGV[1]}", "2", "{e}a", "{e}b", "x"),
	cmd("EVAL", "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('INCR', KEYS[2])", "2", "{e}a", "{e}n", "v"),
	cmd("EVAL", "return 7", "1", "e:any"),
	// Renames and copies inside a tag.
	cmd("SET", "{r}a", "1"), cmd("RENAME", "{r}a", "{r}b"), cmd("RENAMENX", "{r}b", "{r}c"), cmd("COPY", "{r}c", "{r}d"),
	cmd("MSETNX", "{r}x", "1", "{r}y", "2"), cmd("MSETNX", "{r}x", "3", "{r}z", "4"),
	// Multi-key commands across shards: missing keys, duplicates, wrong types.
	cmd("MSET", "m:1", "a", "m:2", "b", "m:3", "c", "m:4", "d", "m:5", "e", "m:6", "f", "m:7", "g", "m:8", "h"),
	cmd("MGET", "m:1", "m:2", "m:3", "m:4", "m:5", "m:6", "m:7", "m:8", "m:missing", "h:1", "m:1", "m:8"),
	cmd("MSET", "m:1", "x", "m:1", "y", "m:9", "z"), cmd("MGET", "m:1", "m:9"),
	cmd("EXISTS", "m:1", "m:2", "m:missing", "m:1", "m:3", "m:3", "h:1"),
	cmd("TOUCH", "m:1", "m:2", "m:missing", "m:1", "m:4"),
	cmd("DEL", "m:1", "m:1", "m:2", "m:missing", "m:5"), cmd("UNLINK", "m:3", "m:4", "m:4", "m:nothing", "m:6"),
	cmd("MGET", "m:1", "m:2", "m:3", "m:4", "m:5", "m:6", "m:7", "m:8"), cmd("MGET", "m:none"), cmd("DEL", "m:none"),
	cmd("MSET", "{u}1", "a", "{u}2", "b"), cmd("MGET", "{u}1", "{u}2", "{u}3"), cmd("DEL", "{u}1", "{u}2"),
	// Errors the servers answer.
	cmd("LPUSH", "s:1", "x"), cmd("INCR", "s:2"), cmd("HSET", "h:1", "a"), cmd("ZADD", "z:1", "notanumber", "a"),
	cmd("GET"), cmd("MSET", "m:1", "a", "m:2"), cmd("MGET"), cmd("DEL"), cmd("SET", "k"),
}

// TestSameRepliesAsRedis runs one script against the proxy over four
// servers and against a single redis-server, and compares every reply
// byte for byte.
func TestSameRepliesAsRedis(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 4, proxytest.Pool{HashTag: "{}"})
	direct := testservers.Redis(t)
	viaProxy, viaRedis := proxytest.Dial(t, f.Addr), proxytest.Dial(t, direct.Addr)
	for i, st := range sameReplyScript {
		got, want := viaProxy.Do(st.args...), viaRedis.Do(st.args...)
		if st.unordered {
			got, want = sortedArray(t, got), sortedArray(t, want)
		}
		if got != want {
			t.Errorf("step %d %q:\nproxy: %q\nredis: %q", i, st.args, got, want)
		}
	}
	used := 0
	for _, b := range f.Backends {
		if proxytest.Dbsize(t, b.Addr) > 0 {
			used++
		}
	}
	// Placement depends on the servers' names, which hold run-time ports:
	// the script's few keys may miss a server, but must span several so
	// that multi-key commands really are split.
	if used < 2 {
		t.Errorf("keys landed on %d of 4 servers; the script should spread them", used)
	}
}

// TestSameRepliesPipelined sends one script in a single write through the
// proxy and to a plain redis-server and compares the reply streams.
func TestSameRepliesPipelined(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 4, proxytest.Pool{HashTag: "{}"})
	direct := testservers.Redis(t)
	var req []byte
	for _, st := range sameReplyScript {
		req = proxytest.EncodeCommand(req, st.args...)
	}
	viaProxy, viaRedis := proxytest.Dial(t, f.Addr), proxytest.Dial(t, direct.Addr)
	viaProxy.Write(req)
	viaRedis.Write(req)
	for i, st := range sameReplyScript {
		got, want := viaProxy.Read(), viaRedis.Read()
		if st.unordered {
			got, want = sortedArray(t, got), sortedArray(t, want)
		}
		if got != want {
			t.Errorf("step %d %q:\nproxy: %q\nredis: %q", i, st.args, got, want)
		}
	}
}

// sortedArray sorts the elements of an encoded array reply.
func sortedArray(t *testing.T, reply string) string {
	t.Helper()
	r := bufio.NewReader(strings.NewReader(reply))
	head, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(head, "*") {
		return reply
	}
	var elems []string
	for {
		e, err := proxytest.ReadReply(r)
		if err != nil {
			break
		}
		elems = append(elems, e.Raw)
	}
	slices.Sort(elems)
	return head + strings.Join(elems, "")
}

// TestGoRedisPipeline compares a go-redis pipeline of mixed commands run
// through the proxy with the same pipeline run against one redis-server.
func TestGoRedisPipeline(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 4, proxytest.Pool{HashTag: "{}"})
	direct := proxytest.NewGoRedis(t, testservers.Redis(t).Addr)
	run := func(c *redis.Client) []redis.Cmder {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmds, err := c.Pipelined(ctx, mixedPipeline)
		if err != nil && err != redis.Nil && !strings.Contains(err.Error(), "WRONGTYPE") {
			t.Fatalf("pipeline: %v", err)
		}
		return cmds
	}
	got, want := run(f.Client), run(direct)
	if len(got) != len(want) || len(got) < 100 {
		t.Fatalf("proxy ran %d commands, redis %d; want the same, at least 100", len(got), len(want))
	}
	for i := range got {
		if got[i].String() != want[i].String() {
			t.Errorf("command %d:\nproxy: %s\nredis: %s", i, got[i].String(), want[i].String())
		}
	}
}

// mixedPipeline queues 20 rounds of mixed commands (more than 100 in all).
func mixedPipeline(p redis.Pipeliner) error {
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		k := func(s string) string { return fmt.Sprintf("%s:%d", s, i) }
		p.Set(ctx, k("str"), i, 0)
		p.Get(ctx, k("str"))
		p.Incr(ctx, k("str"))
		p.MGet(ctx, k("str"), fmt.Sprintf("str:%d", i/2), "missing", k("hash"))
		p.HSet(ctx, k("hash"), "f", i, "g", "x")
		p.HGetAll(ctx, k("hash"))
		p.LPush(ctx, k("list"), i, i+1)
		p.LRange(ctx, k("list"), 0, -1)
		p.SAdd(ctx, k("set"), "a", "b", i)
		p.SCard(ctx, k("set"))
		p.ZAdd(ctx, k("zset"), redis.Z{Score: float64(i), Member: "m"}, redis.Z{Score: 1.5, Member: "n"})
		p.ZRangeWithScores(ctx, k("zset"), 0, -1)
		p.MSet(ctx, k("a"), "1", k("b"), "2", fmt.Sprintf("{t}%d", i), "3")
		p.Exists(ctx, k("a"), k("b"), k("c"), k("a"))
		p.Get(ctx, k("hash"))
		if i%3 == 0 {
			p.Del(ctx, k("a"), k("list"), fmt.Sprintf("str:%d", i/2))
		}
	}
	return nil
}

// TestGoRedisDefaultOptions checks that a go-redis client with default
// options (it asks for RESP3 with HELLO 3, falls back to RESP2 on
// -NOPROTO, and sends CLIENT SETINFO) works through the proxy.
func TestGoRedisDefaultOptions(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 2, proxytest.Pool{})
	c := redis.NewClient(&redis.Options{Addr: f.Addr, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.MSet(ctx, "1:d", "a", "2:d", "b", "3:d", "c").Err(); err != nil {
		t.Fatalf("MSET: %v", err)
	}
	got, err := c.MGet(ctx, "1:d", "2:d", "3:d", "4:d").Result()
	if want := []any{"a", "b", "c", nil}; err != nil || !slices.Equal(got, want) {
		t.Errorf("MGET: %v, %v; want %v", got, err, want)
	}
	if err := c.HSet(ctx, "h:d", "f", "v").Err(); err != nil {
		t.Fatalf("HSET: %v", err)
	}
	if m, err := c.HGetAll(ctx, "h:d").Result(); err != nil || m["f"] != "v" || len(m) != 1 {
		t.Errorf("HGETALL: %v, %v", m, err)
	}
}
