package commands

import "strings"

// readOnlyNames are the forwarded commands that only read: those a
// redis-server flags readonly, but PFCOUNT (it may write its cache) and
// OBJECT. readonly_test.go checks them against the server.
const readOnlyNames = `GET STRLEN TTL PTTL TYPE DUMP EXPIRETIME PEXPIRETIME BITCOUNT BITFIELD_RO SORT_RO BITPOS
	GETRANGE SUBSTR GETBIT HLEN HKEYS HVALS HGETALL HRANDFIELD HGET HEXISTS HSTRLEN HMGET HSCAN LLEN LINDEX LPOS
	LRANGE SCARD SMEMBERS SRANDMEMBER SISMEMBER SMISMEMBER SSCAN ZCARD ZRANDMEMBER ZRANK ZREVRANK ZSCORE ZMSCORE
	ZSCAN ZCOUNT ZLEXCOUNT ZRANGE ZRANGEBYSCORE ZREVRANGE ZREVRANGEBYSCORE ZRANGEBYLEX ZREVRANGEBYLEX GEOHASH
	GEOPOS GEODIST GEORADIUSBYMEMBER_RO GEORADIUS_RO GEOSEARCH LCS SDIFF SINTER SUNION ZUNION ZINTER ZDIFF
	ZINTERCARD SINTERCARD EVAL_RO EVALSHA_RO FCALL_RO MGET EXISTS TOUCH XRANGE XREVRANGE XLEN XPENDING XREAD`

// sortOptions are SORT's options as the server parses them (sort.c). The BY
// and GET patterns name further keys, read on the source key's server; the
// server does not report them as keys (COMMAND GETKEYS) and neither does the
// proxy: a pattern without the source's hash tag reads keys that may live on
// another server, as through nutcracker.
var sortOptions = []KeyOption{
	{Name: "ASC"}, {Name: "DESC"}, {Name: "ALPHA"}, {Name: "LIMIT", Args: 2},
	{Name: "BY", Args: 1}, {Name: "GET", Args: 1}, {Name: "STORE", Args: 1, Key: true, Last: true},
}

// georadiusOptions are GEORADIUS's and GEORADIUSBYMEMBER's options as the
// server parses them (geo.c): STORE and STOREDIST name the destination. The
// server writes only the last one given, but its key specifications name
// them all, and so does the proxy.
var georadiusOptions = []KeyOption{
	{Name: "WITHCOORD"}, {Name: "WITHDIST"}, {Name: "WITHHASH"}, {Name: "ANY"}, {Name: "ASC"}, {Name: "DESC"},
	{Name: "COUNT", Args: 1}, {Name: "STORE", Args: 1, Key: true}, {Name: "STOREDIST", Args: 1, Key: true},
}

// buildCommands makes the command table, keyed by upper-case name.
func buildCommands() map[string]*Command {
	m := map[string]*Command{}
	add := func(c Command, names string) {
		for _, n := range strings.Fields(names) {
			c := c
			c.Name = n
			m[n] = &c
		}
	}
	// One key, the first argument; arity as the server's (COMMAND INFO).
	single := func(arity int, names string) {
		add(Command{Kind: Single, Arity: arity, KeyAt: 1, LastKey: 1, Step: 1}, names)
	}
	// Strings, keys and TTLs.
	single(2, "GET STRLEN INCR DECR GETDEL TTL PTTL PERSIST TYPE DUMP EXPIRETIME PEXPIRETIME")
	single(-2, "GETEX BITCOUNT BITFIELD BITFIELD_RO SORT_RO")
	single(-3, "SET BITPOS EXPIRE PEXPIRE EXPIREAT PEXPIREAT")
	single(3, "SETNX APPEND INCRBY DECRBY INCRBYFLOAT GETSET GETBIT")
	single(4, "SETEX PSETEX GETRANGE SETRANGE SUBSTR SETBIT")
	single(-4, "RESTORE")
	// Hashes.
	single(2, "HLEN HKEYS HVALS HGETALL")
	single(-2, "HRANDFIELD")
	single(3, "HGET HEXISTS HSTRLEN")
	single(-3, "HDEL HMGET HSCAN")
	single(4, "HSETNX HINCRBY HINCRBYFLOAT")
	single(-4, "HSET HMSET")
	// Lists.
	single(2, "LLEN")
	single(-2, "LPOP RPOP")
	single(3, "LINDEX")
	single(-3, "LPUSH RPUSH LPUSHX RPUSHX LPOS")
	single(4, "LRANGE LSET LREM LTRIM")
	single(5, "LINSERT")
	// Sets.
	single(2, "SCARD SMEMBERS")
	single(-2, "SPOP SRANDMEMBER")
	single(3, "SISMEMBER")
	single(-3, "SADD SREM SMISMEMBER SSCAN")
	// Sorted sets.
	single(2, "ZCARD")
	single(-2, "ZPOPMIN ZPOPMAX ZRANDMEMBER")
	single(3, "ZRANK ZREVRANK ZSCORE")
	single(-3, "ZREM ZMSCORE ZSCAN")
	single(4, "ZINCRBY ZCOUNT ZLEXCOUNT ZREMRANGEBYRANK ZREMRANGEBYSCORE ZREMRANGEBYLEX")
	single(-4, "ZADD ZRANGE ZRANGEBYSCORE ZREVRANGE ZREVRANGEBYSCORE ZRANGEBYLEX ZREVRANGEBYLEX")
	// HyperLogLog, geo.
	single(-2, "PFADD GEOHASH GEOPOS")
	single(-4, "GEODIST")
	single(-5, "GEOADD GEORADIUSBYMEMBER_RO")
	single(-6, "GEORADIUS_RO")
	single(-7, "GEOSEARCH")
	// OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT key: at least their arity, 3;
	// the server judges more (OBJECT HELP has no key and is refused).
	add(Command{Kind: Single, Arity: -3, KeyAt: 2, LastKey: 2, Step: 1}, "OBJECT")
	// Streams (streams.go): one key, or subcommands with their key at 2,
	// or XREAD's keys after STREAMS.
	single(2, "XLEN")
	single(-3, "XDEL XPENDING XSETID")
	single(-4, "XRANGE XREVRANGE XTRIM XACK")
	single(-5, "XADD")
	single(-6, "XCLAIM XAUTOCLAIM")
	addStreams(add)

	// Several keys that must live on one server.
	same := func(arity, keyAt, lastKey, step int, names string) {
		add(Command{Kind: SameServer, Arity: arity, KeyAt: keyAt, LastKey: lastKey, Step: step}, names)
	}
	same(3, 1, 2, 1, "RENAME RENAMENX RPOPLPUSH")
	same(4, 1, 2, 1, "SMOVE")
	same(5, 1, 2, 1, "LMOVE")
	same(-3, 1, 2, 1, "COPY LCS")
	same(-5, 1, 2, 1, "ZRANGESTORE")
	same(-8, 1, 2, 1, "GEOSEARCHSTORE")
	same(-2, 1, -1, 1, "SDIFF SINTER SUNION PFCOUNT PFMERGE")
	same(-3, 1, -1, 1, "SDIFFSTORE SINTERSTORE SUNIONSTORE")
	same(-3, 1, -2, 2, "MSETNX")
	same(-4, 2, -1, 1, "BITOP")

	// Keys counted by a numkeys argument, after a destination for the
	// STORE forms.
	add(Command{Kind: SameServer, Arity: -3, NumkeysAt: 1}, "ZUNION ZINTER ZDIFF ZINTERCARD SINTERCARD")
	add(Command{Kind: SameServer, Arity: -4, NumkeysAt: 1}, "LMPOP ZMPOP")
	add(Command{Kind: SameServer, Arity: -3, NumkeysAt: 2}, "EVAL EVALSHA EVAL_RO EVALSHA_RO FCALL FCALL_RO")
	add(Command{Kind: SameServer, Arity: -4, KeyAt: 1, LastKey: 1, Step: 1, NumkeysAt: 2}, "ZUNIONSTORE ZINTERSTORE ZDIFFSTORE")

	// A source key and the destination of an option, when given.
	withOptions := func(arity, optsAt int, opts []KeyOption, names string) {
		add(Command{Kind: SameServer, Arity: arity, KeyAt: 1, LastKey: 1, Step: 1, OptsAt: optsAt, Opts: opts}, names)
	}
	withOptions(-2, 2, sortOptions, "SORT")
	withOptions(-6, 6, georadiusOptions, "GEORADIUS")
	withOptions(-5, 5, georadiusOptions, "GEORADIUSBYMEMBER")

	split := func(arity, step int, merge uint8, names string) {
		add(Command{Kind: Split, Arity: arity, KeyAt: 1, LastKey: -step, Step: step, Merge: merge}, names)
	}
	split(-2, 1, MergeArray, "MGET")
	split(-3, 2, MergeOK, "MSET")
	split(-2, 1, MergeSum, "DEL UNLINK EXISTS TOUCH")

	// Answered by the proxy, which checks their arguments itself.
	add(Command{Kind: Local, Arity: -1}, "PING ECHO QUIT SELECT HELLO CLIENT COMMAND INFO AUTH CONFIG")
	add(Command{Kind: Local, Arity: 1}, "RESET")

	// Transactions and blocking commands run on a session connection of
	// the client's own (proxy/session.go).
	tx := func(sess uint8, names string) { add(Command{Kind: Session, Arity: 1, Sess: sess}, names) }
	tx(SessMulti, "MULTI")
	tx(SessExec, "EXEC")
	tx(SessDiscard, "DISCARD")
	tx(SessUnwatch, "UNWATCH")
	add(Command{Kind: Session, Arity: -2, KeyAt: 1, LastKey: -1, Step: 1, Sess: SessWatch}, "WATCH")
	blocking := func(c Command, names string) {
		c.Kind, c.Sess = SameServer, SessBlocking
		add(c, names)
	}
	blocking(Command{Arity: -3, KeyAt: 1, LastKey: -2, Step: 1}, "BLPOP BRPOP BZPOPMIN BZPOPMAX")
	blocking(Command{Arity: 4, KeyAt: 1, LastKey: 2, Step: 1}, "BRPOPLPUSH")
	blocking(Command{Arity: 6, KeyAt: 1, LastKey: 2, Step: 1}, "BLMOVE")
	blocking(Command{Arity: -5, NumkeysAt: 2}, "BLMPOP BZMPOP")

	// Pub/sub (proxy/pubsub.go): a channel lives where a key of its name does.
	pubsub := func(sub uint8, arity int, names string) {
		add(Command{Kind: PubSub, Arity: arity, Subscription: sub}, names)
	}
	pubsub(SubChannel, -2, "SUBSCRIBE")
	pubsub(SubChannel|SubEnd, -1, "UNSUBSCRIBE")
	pubsub(SubPattern, -2, "PSUBSCRIBE")
	pubsub(SubPattern|SubEnd, -1, "PUNSUBSCRIBE")
	pubsub(SubShard, -2, "SSUBSCRIBE")
	pubsub(SubShard|SubEnd, -1, "SUNSUBSCRIBE")
	pubsub(SubInfo, -2, "PUBSUB")
	add(Command{Kind: Single, Arity: 3, KeyAt: 1, LastKey: 1, Step: 1, Channel: true}, "PUBLISH SPUBLISH")

	// Sent to every server of the pool and merged (proxy/keyspace.go); the
	// server's arity.
	add(Command{Kind: Keyspace, Arity: 1}, "DBSIZE RANDOMKEY")
	add(Command{Kind: Keyspace, Arity: 2}, "KEYS")
	add(Command{Kind: Keyspace, Arity: -2}, "SCAN")
	add(Command{Kind: Keyspace, Arity: -1}, "FLUSHDB FLUSHALL")

	unsupported := func(names string) { add(Command{Kind: Unsupported, Arity: -1}, names) }
	// MOVE and MIGRATE take a key out of the pool's database, SWAPDB
	// swaps whole databases.
	unsupported("SWAPDB MOVE MIGRATE WAIT WAITAOF")
	unsupported("SAVE BGSAVE BGREWRITEAOF LASTSAVE SHUTDOWN SLAVEOF REPLICAOF SYNC PSYNC")
	unsupported("MONITOR DEBUG SLOWLOG LATENCY MODULE ACL CLUSTER READONLY READWRITE")
	unsupported("SCRIPT FUNCTION TIME LOLWUT FAILOVER ROLE OBJECT_FREQ")
	for _, n := range strings.Fields(readOnlyNames) {
		m[n].ReadOnly = true
	}
	return m
}
