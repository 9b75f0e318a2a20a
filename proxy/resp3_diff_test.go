package proxy_test

import (
	"testing"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// resp3Battery is sent after HELLO 3 to a redis-server and through the
// proxy, whose replies must be the same bytes. It covers every RESP3 reply
// type Redis 7.0 sends for commands the proxy forwards: maps, sets,
// doubles, big numbers, booleans and verbatim strings (from Lua, as
// redis.setresp(3) and the RESP3 tables give them), nulls, nested
// aggregates, errors and integers, and the commands the proxy splits over
// servers and merges. Randomised commands (HRANDFIELD, ZRANDMEMBER,
// SRANDMEMBER) run on one-element values, so their answers are fixed. Keys
// in braces share a server ("{}" is the pool's hash tag). Streams (XADD,
// XRANGE, XINFO) are not in it: the proxy does not forward them.
var resp3Battery = [][]string{
	// Strings and nulls.
	{"SET", "s:1", "one"}, {"GET", "s:1"}, {"GET", "s:missing"}, {"GETDEL", "s:missing"},
	{"SET", "s:2", "two", "GET"}, {"SET", "s:new", "v", "GET"}, {"SET", "s:1", "x", "NX"},
	{"GETEX", "s:missing", "PERSIST"}, {"INCRBYFLOAT", "n:f", "1.5"}, {"INCR", "n:i"}, {"STRLEN", "s:1"},
	{"EXPIREAT", "s:2", "4102444800"}, {"EXPIRETIME", "s:2"}, {"TTL", "s:missing"}, {"TYPE", "s:1"},
	{"OBJECT", "ENCODING", "n:i"}, {"OBJECT", "ENCODING", "s:missing"},
	// Hashes: maps, and nulls in them.
	{"HSET", "h:1", "a", "1", "b", "2", "c", "3"}, {"HGETALL", "h:1"}, {"HGETALL", "h:missing"},
	{"HGET", "h:1", "b"}, {"HGET", "h:1", "missing"}, {"HGET", "h:missing", "a"}, {"HMGET", "h:1", "a", "x", "c"},
	{"HKEYS", "h:1"}, {"HVALS", "h:1"}, {"HINCRBYFLOAT", "h:1", "f", "0.25"}, {"HSTRLEN", "h:1", "a"},
	{"HSET", "h:one", "only", "v"}, {"HRANDFIELD", "h:one"}, {"HRANDFIELD", "h:one", "-2", "WITHVALUES"},
	{"HRANDFIELD", "h:missing"}, {"HRANDFIELD", "h:missing", "2", "WITHVALUES"}, {"HSCAN", "h:1", "0"},
	// Sets: integer sets (ordered), string sets (sorted before comparing).
	{"SADD", "set:i", "3", "1", "2"}, {"SMEMBERS", "set:i"}, {"SMEMBERS", "set:missing"},
	{"SADD", "set:s", "b", "a", "c"}, {"SMEMBERS", "set:s"}, {"SISMEMBER", "set:s", "a"},
	{"SMISMEMBER", "set:s", "a", "q"}, {"SPOP", "set:missing"}, {"SRANDMEMBER", "set:missing"},
	{"SADD", "set:one", "x"}, {"SRANDMEMBER", "set:one"}, {"SRANDMEMBER", "set:one", "-2"},
	{"SADD", "{s}a", "1", "2", "3", "x"}, {"SADD", "{s}b", "2", "3", "4", "x"}, {"SINTER", "{s}a", "{s}b"},
	{"SUNION", "{s}a", "{s}b"}, {"SDIFF", "{s}a", "{s}b"}, {"SINTER", "{s}a", "{s}missing"},
	{"SINTERCARD", "2", "{s}a", "{s}b"}, {"SSCAN", "set:i", "0"},
	// Sorted sets: doubles, alone and nested in arrays.
	{"ZADD", "z:1", "1", "a", "2.5", "b", "3", "c"}, {"ZSCORE", "z:1", "b"}, {"ZSCORE", "z:1", "nope"},
	{"ZSCORE", "z:missing", "a"}, {"ZINCRBY", "z:1", "1.5", "a"}, {"ZADD", "z:1", "INCR", "0.1", "c"},
	{"ZADD", "z:1", "XX", "INCR", "1", "nope"}, {"ZRANGE", "z:1", "0", "-1", "WITHSCORES"}, {"ZRANGE", "z:1", "0", "-1"},
	{"ZRANGEBYSCORE", "z:1", "-inf", "+inf", "WITHSCORES"}, {"ZREVRANGE", "z:1", "0", "1", "WITHSCORES"},
	{"ZMSCORE", "z:1", "a", "zz", "b"}, {"ZRANK", "z:1", "c"}, {"ZRANK", "z:1", "zz"}, {"ZSCAN", "z:1", "0"},
	{"ZADD", "z:2", "inf", "p", "-inf", "m", "1e300", "big", "-0.1", "neg", "0", "zero"},
	{"ZRANGE", "z:2", "0", "-1", "WITHSCORES"}, {"ZSCORE", "z:2", "p"}, {"ZSCORE", "z:2", "m"},
	{"ZPOPMIN", "z:2"}, {"ZPOPMAX", "z:2", "2"}, {"ZPOPMIN", "z:missing"},
	{"ZADD", "z:one", "7", "only"}, {"ZRANDMEMBER", "z:one"}, {"ZRANDMEMBER", "z:one", "-2", "WITHSCORES"},
	{"ZRANDMEMBER", "z:missing"}, {"ZADD", "{z}a", "1", "x", "2", "y"}, {"ZADD", "{z}b", "10", "y", "20", "z"},
	{"ZUNION", "2", "{z}a", "{z}b", "WITHSCORES"}, {"ZINTER", "2", "{z}a", "{z}b", "WITHSCORES"},
	{"ZDIFF", "2", "{z}a", "{z}b", "WITHSCORES"}, {"ZUNIONSTORE", "{z}u", "2", "{z}a", "{z}b"},
	// Lists.
	{"RPUSH", "l:1", "a", "b", "c", "d"}, {"LRANGE", "l:1", "0", "-1"}, {"LPOP", "l:missing"}, {"LPOP", "l:1", "2"},
	{"LPOP", "l:missing", "2"}, {"LPOS", "l:1", "zz"}, {"LINDEX", "l:1", "99"}, {"RPOPLPUSH", "{l}missing", "{l}dst"},
	{"SORT", "l:1", "ALPHA", "DESC"},
	// Geo: doubles and nulls inside nested arrays.
	{"GEOADD", "geo:1", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"},
	{"GEODIST", "geo:1", "Palermo", "Catania", "km"}, {"GEODIST", "geo:1", "Palermo", "Nowhere"},
	{"GEOPOS", "geo:1", "Palermo", "Nowhere"}, {"GEOHASH", "geo:1", "Catania", "Nowhere"},
	{"GEOSEARCH", "geo:1", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC", "WITHCOORD", "WITHDIST", "WITHHASH"},
	// Other nested aggregates: LCS IDX is a map of arrays; BITFIELD has nulls.
	{"SET", "{c}a", "ohmytext"}, {"SET", "{c}b", "mynewtext"}, {"LCS", "{c}a", "{c}b", "IDX", "MINMATCHLEN", "2", "WITHMATCHLEN"},
	{"LCS", "{c}a", "{c}b", "LEN"}, {"BITFIELD", "bf:1", "SET", "u8", "0", "255", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "1", "GET", "u8", "0"},
	{"PFADD", "hll:1", "a", "b"}, {"PFCOUNT", "hll:1"},
	// Lua: every RESP3 type a script returns to a RESP3 client.
	{"EVAL", "redis.setresp(3); return redis.call('HGETALL', KEYS[1])", "1", "h:1"},
	{"EVAL", "redis.setresp(3); return redis.call('ZSCORE', KEYS[1], 'b')", "1", "z:1"},
	{"EVAL", "redis.setresp(3); return redis.call('SMEMBERS', KEYS[1])", "1", "set:i"},
	{"EVAL", "return {double=3.14}", "1", "e:k"}, {"EVAL", "return {double=-1/0}", "1", "e:k"},
	{"EVAL", "return {big_number='123456789012345678901234567890'}", "1", "e:k"},
	{"EVAL", "return {big_number='-42'}", "1", "e:k"},
	{"EVAL", "return {verbatim_string={format='txt', string='some text'}}", "1", "e:k"},
	{"EVAL", "return {verbatim_string={format='mkd', string='# head\\r\\nline'}}", "1", "e:k"},
	{"EVAL", "redis.setresp(3); return true", "1", "e:k"}, {"EVAL", "redis.setresp(3); return false", "1", "e:k"},
	{"EVAL", "return true", "1", "e:k"}, {"EVAL", "return false", "1", "e:k"}, {"EVAL", "return nil", "1", "e:k"},
	{"EVAL", "return {map={a=1}}", "1", "e:k"}, {"EVAL", "return {set={x=true}}", "1", "e:k"},
	{"EVAL", "return {map={k={set={a=true}}}}", "1", "e:k"},
	{"EVAL", "return {1, 'two', {double=3}, {map={m={big_number='9'}}}, {set={}}, {map={}}}", "1", "e:k"},
	{"EVAL", "return redis.error_reply('MY custom error')", "1", "e:k"}, {"EVAL", "return {err='boom'}", "1", "e:k"},
	{"EVAL", "return redis.status_reply('FINE')", "1", "e:k"}, {"EVAL", "return 42", "1", "e:k"},
	{"EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "1", "e:k"},
	// Replies larger than a read buffer: nested doubles, a verbatim string.
	{"EVAL", "for i = 1, 4000 do redis.call('ZADD', KEYS[1], i / 3, 'member' .. i) end return 1", "1", "big:z"},
	{"ZRANGE", "big:z", "0", "-1", "WITHSCORES"}, {"ZRANDMEMBER", "big:z", "0", "WITHSCORES"},
	{"EVAL", "return {verbatim_string={format='txt', string=string.rep('v', 200000)}}", "1", "e:k"},
	{"EVAL", "local t = {} for i = 1, 3000 do t[i] = {double=i / 7} end return t", "1", "e:k"},
	// Split and merged across servers: RESP3 nulls for missing keys, sums.
	{"MSET", "m:1", "a", "m:2", "b", "m:3", "c", "m:4", "d", "m:5", "e", "m:6", "f", "m:7", "g", "m:8", "h"},
	{"MGET", "m:1", "m:2", "m:3", "m:4", "m:5", "m:6", "m:7", "m:8", "m:missing", "h:1", "m:1", "m:8"},
	{"MGET", "m:none", "m:nothing"}, {"MGET", "m:none"}, {"MSET", "m:1", "x", "m:1", "y", "m:9", "z"},
	{"EXISTS", "m:1", "m:2", "m:missing", "m:1", "m:3", "m:3", "h:1"}, {"TOUCH", "m:1", "m:2", "m:missing", "m:1", "m:4"},
	{"DEL", "m:1", "m:1", "m:2", "m:missing", "m:5"}, {"UNLINK", "m:3", "m:4", "m:4", "m:nothing", "m:6"},
	{"MGET", "m:1", "m:2", "m:3", "m:4", "m:5", "m:6", "m:7", "m:8", "m:9"}, {"DEL", "m:none"}, {"EXISTS", "m:none"},
	// Errors the servers answer.
	{"LPUSH", "s:1", "x"}, {"HGETALL", "s:1"}, {"INCR", "s:1"}, {"ZADD", "z:1", "notanumber", "a"},
	{"ZINCRBY", "z:1", "nan", "a"}, {"HINCRBYFLOAT", "h:1", "a", "x"}, {"GET"}, {"SET", "k"}, {"MGET"}, {"DEL"},
	{"MSET", "m:1", "a", "m:2"}, {"HSET", "h:1", "a"}, {"GEOADD", "geo:1", "500", "500", "x"},
	// The connection is still in step.
	{"GET", "s:1"}, {"HGETALL", "h:one"},
}

// TestRESP3SameRepliesAsRedis sends the battery after HELLO 3 through the
// proxy and to a redis-server holding the same data, one command at a
// time and as one pipeline, through a pool of one server and a pool of
// three, and compares every reply byte for byte (the elements of RESP3
// sets sorted: Redis does not order them).
func TestRESP3SameRepliesAsRedis(t *testing.T) {
	for _, servers := range []int{1, 3} {
		for _, pipelined := range []bool{false, true} {
			name := map[bool]string{false: "one_by_one", true: "pipelined"}[pipelined]
			t.Run(name+"/"+[]string{1: "pool_of_1", 3: "pool_of_3"}[servers], func(t *testing.T) {
				// Named servers: where the keys go does not depend on
				// the ports the servers got.
				backends := proxytest.StartRedisBackends(t, servers)
				names := []string{"alpha", "beta", "gamma"}[:servers]
				f := proxytest.StartFixture(t, proxytest.Pool{HashTag: "{}", Servers: proxytest.ServerLines(backends, nil, names)}, backends)
				direct := testservers.Redis(t)
				viaProxy, viaRedis := proxytest.Dial(t, f.Addr), proxytest.Dial(t, direct.Addr)
				got, want := runResp3Battery(t, viaProxy, pipelined), runResp3Battery(t, viaRedis, pipelined)
				compareResp3(t, got, want)
				// Every key written is on one of the pool's servers, and
				// a pool of 3 uses all three.
				checkSpread(t, f.Backends, servers, proxytest.Dbsize(t, direct.Addr))
			})
		}
	}
}

// runResp3Battery says HELLO 3 on c, checks that the server switched, and
// returns the battery's replies.
func runResp3Battery(t *testing.T, c *proxytest.Conn, pipelined bool) []string {
	t.Helper()
	if hello := proxytest.Shape(c.DoAny("HELLO", "3")); hello != helloShape3 {
		t.Fatalf("HELLO 3: %s, want %s", hello, helloShape3)
	}
	if pipelined {
		return proxytest.PipelineAny(t, c, resp3Battery)
	}
	out := make([]string, len(resp3Battery))
	for i, cmd := range resp3Battery {
		out[i] = c.DoAny(cmd...)
	}
	return out
}

// compareResp3 compares the replies to the battery, with sets sorted, and
// tells how many were compared.
func compareResp3(t *testing.T, got, want []string) {
	t.Helper()
	bad := 0
	for i, cmd := range resp3Battery {
		g, w := proxytest.SortSet(got[i]), proxytest.SortSet(want[i])
		if g != w {
			bad++
			t.Errorf("%q:\nproxy: %q\nredis: %q", cmd, proxytest.Short(g), proxytest.Short(w))
		}
	}
	t.Logf("%d replies compared, %d differ", len(resp3Battery), bad)
}
