package proxy

import "strings"

// cmdKind says how the proxy serves a command.
type cmdKind uint8

const (
	kindUnknown     cmdKind = iota
	kindSingle              // one key at keyAt: forwarded whole to its server
	kindSameServer          // several keys, all on one server, else refused
	kindNumkeys             // keys counted by the argument at numkeysAt; all on one server
	kindSplit               // multi-key, split per server and merged
	kindLocal               // answered by the proxy
	kindUnsupported         // known, but cannot be served through a proxy
)

// mergeKind says how the fragments of a split command are merged.
const (
	mergeNone  uint8 = iota
	mergeArray       // MGET: element per key, in key order
	mergeSum         // DEL, UNLINK, EXISTS, TOUCH: integers added
	mergeOK          // MSET: +OK once every part is +OK
)

// command is one row of the command table.
type command struct {
	name      string // upper case
	kind      cmdKind
	minArgs   int   // including the command name
	keyAt     int   // first key argument
	lastKey   int   // last key argument; negative counts from the end (-1 = last)
	step      int   // distance between keys (MSET: 2)
	numkeysAt int   // kindNumkeys: argument that holds the key count
	merge     uint8 // kindSplit
}

// commands is the command table, keyed by upper-case name.
var commands = buildCommands()

func buildCommands() map[string]*command {
	m := map[string]*command{}
	add := func(c command, names string) {
		for _, n := range strings.Fields(names) {
			c := c
			c.name = n
			m[n] = &c
		}
	}
	single := func(minArgs int, names string) {
		add(command{kind: kindSingle, minArgs: minArgs, keyAt: 1, lastKey: 1, step: 1}, names)
	}
	// Strings, keys and TTLs.
	single(2, "GET STRLEN INCR DECR GETDEL TTL PTTL PERSIST TYPE DUMP EXPIRETIME PEXPIRETIME")
	single(2, "GETEX BITCOUNT BITPOS BITFIELD BITFIELD_RO SORT SORT_RO")
	single(3, "SET SETNX APPEND INCRBY DECRBY INCRBYFLOAT GETSET GETBIT EXPIRE PEXPIRE EXPIREAT PEXPIREAT")
	single(4, "SETEX PSETEX GETRANGE SETRANGE SUBSTR SETBIT RESTORE")
	// Hashes.
	single(2, "HLEN HKEYS HVALS HGETALL HRANDFIELD")
	single(3, "HGET HDEL HEXISTS HSTRLEN HMGET HSCAN")
	single(4, "HSET HSETNX HMSET HINCRBY HINCRBYFLOAT")
	// Lists.
	single(2, "LLEN LPOP RPOP")
	single(3, "LPUSH RPUSH LPUSHX RPUSHX LINDEX LPOS")
	single(4, "LRANGE LSET LREM LTRIM")
	single(5, "LINSERT")
	// Sets.
	single(2, "SCARD SMEMBERS SPOP SRANDMEMBER")
	single(3, "SADD SREM SISMEMBER SMISMEMBER SSCAN")
	// Sorted sets.
	single(2, "ZCARD ZPOPMIN ZPOPMAX ZRANDMEMBER")
	single(3, "ZREM ZRANK ZREVRANK ZSCORE ZMSCORE ZSCAN")
	single(4, "ZADD ZINCRBY ZCOUNT ZRANGE ZRANGEBYSCORE ZREVRANGE ZREVRANGEBYSCORE ZRANGEBYLEX")
	single(4, "ZREVRANGEBYLEX ZLEXCOUNT ZREMRANGEBYRANK ZREMRANGEBYSCORE ZREMRANGEBYLEX")
	// HyperLogLog, geo.
	single(2, "PFADD")
	single(3, "GEOHASH GEOPOS")
	single(4, "GEODIST GEOSEARCH")
	single(5, "GEOADD GEORADIUSBYMEMBER GEORADIUSBYMEMBER_RO")
	single(6, "GEORADIUS GEORADIUS_RO")
	add(command{kind: kindSingle, minArgs: 3, keyAt: 2, lastKey: 2, step: 1}, "OBJECT")

	// Several keys that must live on one server.
	same := func(minArgs, keyAt, lastKey, step int, names string) {
		add(command{kind: kindSameServer, minArgs: minArgs, keyAt: keyAt, lastKey: lastKey, step: step}, names)
	}
	same(3, 1, 2, 1, "RENAME RENAMENX RPOPLPUSH SMOVE COPY LCS ZRANGESTORE GEOSEARCHSTORE")
	same(5, 1, 2, 1, "LMOVE")
	same(2, 1, -1, 1, "SDIFF SINTER SUNION PFCOUNT PFMERGE")
	same(3, 1, -1, 1, "SDIFFSTORE SINTERSTORE SUNIONSTORE")
	same(3, 1, -2, 2, "MSETNX")
	same(4, 2, -1, 1, "BITOP")

	numkeys := func(minArgs, numkeysAt, keyAt int, names string) {
		add(command{kind: kindNumkeys, minArgs: minArgs, numkeysAt: numkeysAt, keyAt: keyAt}, names)
	}
	numkeys(3, 1, 2, "ZUNION ZINTER ZDIFF ZINTERCARD SINTERCARD")
	numkeys(4, 2, 3, "ZUNIONSTORE ZINTERSTORE ZDIFFSTORE")
	numkeys(3, 2, 3, "EVAL EVALSHA EVAL_RO EVALSHA_RO FCALL FCALL_RO")

	split := func(minArgs, step int, merge uint8, names string) {
		add(command{kind: kindSplit, minArgs: minArgs, keyAt: 1, lastKey: -1, step: step, merge: merge}, names)
	}
	split(2, 1, mergeArray, "MGET")
	split(3, 2, mergeOK, "MSET")
	split(2, 1, mergeSum, "DEL UNLINK EXISTS TOUCH")

	add(command{kind: kindLocal, minArgs: 1}, "PING ECHO QUIT SELECT HELLO CLIENT COMMAND INFO AUTH CONFIG")

	add(command{kind: kindUnsupported}, "MULTI EXEC DISCARD WATCH UNWATCH SUBSCRIBE PSUBSCRIBE UNSUBSCRIBE")
	add(command{kind: kindUnsupported}, "PUNSUBSCRIBE SSUBSCRIBE SUNSUBSCRIBE PUBLISH SPUBLISH PUBSUB")
	add(command{kind: kindUnsupported}, "BLPOP BRPOP BRPOPLPUSH BLMOVE BLMPOP BZPOPMIN BZPOPMAX BZMPOP LMPOP ZMPOP")
	add(command{kind: kindUnsupported}, "KEYS SCAN RANDOMKEY DBSIZE FLUSHDB FLUSHALL SWAPDB MOVE MIGRATE WAIT WAITAOF")
	add(command{kind: kindUnsupported}, "SAVE BGSAVE BGREWRITEAOF LASTSAVE SHUTDOWN SLAVEOF REPLICAOF SYNC PSYNC")
	add(command{kind: kindUnsupported}, "MONITOR DEBUG SLOWLOG LATENCY MEMORY MODULE ACL CLUSTER READONLY READWRITE")
	add(command{kind: kindUnsupported}, "SCRIPT FUNCTION TIME LOLWUT RESET FAILOVER ROLE OBJECT_FREQ")
	return m
}

// lookup finds a command by name, in any case, without allocating.
func lookup(name []byte) *command {
	var up [24]byte
	if len(name) > len(up) {
		return nil
	}
	for i, c := range name {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		up[i] = c
	}
	return commands[string(up[:len(name)])]
}
