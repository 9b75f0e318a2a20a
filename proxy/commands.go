package proxy

import "strings"

// cmdKind says how the proxy serves a command.
type cmdKind uint8

const (
	kindUnknown     cmdKind = iota
	kindSingle              // one key at keyAt: forwarded whole to its server
	kindSameServer          // several keys (see command.keys), all on one server, else refused
	kindSplit               // multi-key, split per server and merged
	kindLocal               // answered by the proxy
	kindKeyspace            // over the whole keyspace: every server of the pool (keyspace.go)
	kindUnsupported         // known, but cannot be served through a proxy
	kindSession             // a transaction's own command (MULTI, EXEC, ...): see session.go
	kindPubSub              // a subscription command, or PUBSUB: see pubsub.go
)

// What a command does to a client's session (session.go).
const (
	sessNone     uint8 = iota
	sessMulti          // MULTI
	sessExec           // EXEC
	sessDiscard        // DISCARD
	sessWatch          // WATCH keys
	sessUnwatch        // UNWATCH
	sessBlocking       // a command that may block (BLPOP ...): run on a session connection
)

// mergeKind says how the fragments of a split command are merged.
const (
	mergeNone  uint8 = iota
	mergeArray       // MGET: element per key, in key order
	mergeSum         // DEL, UNLINK, EXISTS, TOUCH: integers added
	mergeOK          // MSET: +OK once every part is +OK
	// The keyspace commands' merges (keyspace.go), from mergeConcat on.
	mergeConcat // KEYS: the arrays of every server, one after another
	mergeRandom // RANDOMKEY: a random server's key, if it has one
	mergeScan   // SCAN: one server's page, its cursor made the pool's
)

// command is one row of the command table. Its keys are where the server's
// own key specifications put them (COMMAND INFO): a fixed range, a range
// counted by a numkeys argument, and an option that names a key. Every row
// is checked against the server's COMMAND GETKEYS in commands_keys_test.go.
type command struct {
	name         string // upper case
	kind         cmdKind
	arity        int         // the server's arity (COMMAND INFO), counting the name: n exactly, -n at least n
	keyAt        int         // first key of the fixed range; 0: none
	lastKey      int         // last key of the fixed range; negative counts from the end (-1 = last)
	step         int         // distance between keys of the fixed range (MSET: 2)
	numkeysAt    int         // argument that counts the keys right after it (ZUNIONSTORE, EVAL); 0: none
	optsAt       int         // first option argument, when opts is set
	opts         []keyOption // options the server parses from optsAt on (SORT, GEORADIUS)
	merge        uint8       // kindSplit
	sess         uint8       // sessNone, or what it does to the client's session
	subscription uint8       // subNone, or which subscription command it is (pubsub.go)
	// channel says its "key" is a pub/sub channel, placed as a key is but
	// not one to the server (PUBLISH).
	channel bool
	// keysFunc finds the keys where no fixed position says where they
	// are (XREAD's, after its STREAMS option); nil for the others.
	keysFunc func(dst, args [][]byte) ([][]byte, keysErr)
	// subs are the subcommands of a command whose keys depend on its
	// first argument (XINFO, XGROUP): each a row of its own, named as
	// the subcommand ("STREAM"), found by args[1] (see subKeys).
	subs []command
	id   uint16 // the index of its request counter (commandcount.go)
	// readonly says the command only reads (the server flags it
	// readonly, and it writes nothing): with replica_reads it may go to a
	// replica.
	readonly bool
}

// readOnlyNames are the forwarded commands that only read: those a
// redis-server flags readonly, but PFCOUNT (it may write its cache) and
// OBJECT. commands_readonly_test.go checks them against the server.
const readOnlyNames = `GET STRLEN TTL PTTL TYPE DUMP EXPIRETIME PEXPIRETIME BITCOUNT BITFIELD_RO SORT_RO BITPOS
	GETRANGE SUBSTR GETBIT HLEN HKEYS HVALS HGETALL HRANDFIELD HGET HEXISTS HSTRLEN HMGET HSCAN LLEN LINDEX LPOS
	LRANGE SCARD SMEMBERS SRANDMEMBER SISMEMBER SMISMEMBER SSCAN ZCARD ZRANDMEMBER ZRANK ZREVRANK ZSCORE ZMSCORE
	ZSCAN ZCOUNT ZLEXCOUNT ZRANGE ZRANGEBYSCORE ZREVRANGE ZREVRANGEBYSCORE ZRANGEBYLEX ZREVRANGEBYLEX GEOHASH
	GEOPOS GEODIST GEORADIUSBYMEMBER_RO GEORADIUS_RO GEOSEARCH LCS SDIFF SINTER SUNION ZUNION ZINTER ZDIFF
	ZINTERCARD SINTERCARD EVAL_RO EVALSHA_RO FCALL_RO MGET EXISTS TOUCH XRANGE XREVRANGE XLEN XPENDING XREAD`

// keyOption is an option a command parses after its fixed arguments: its
// name, how many arguments follow it, and whether that argument is a key
// (SORT's and GEORADIUS's STORE destination).
type keyOption struct {
	name string // upper case
	args int
	key  bool // its argument is a key
	last bool // of several such options only the last names a key (SORT's STORE)
}

// sortOptions are SORT's options as the server parses them (sort.c). The BY
// and GET patterns name further keys, read on the source key's server; the
// server does not report them as keys (COMMAND GETKEYS) and neither does the
// proxy: a pattern without the source's hash tag reads keys that may live on
// another server, as through nutcracker.
var sortOptions = []keyOption{
	{name: "ASC"}, {name: "DESC"}, {name: "ALPHA"}, {name: "LIMIT", args: 2},
	{name: "BY", args: 1}, {name: "GET", args: 1}, {name: "STORE", args: 1, key: true, last: true},
}

// georadiusOptions are GEORADIUS's and GEORADIUSBYMEMBER's options as the
// server parses them (geo.c): STORE and STOREDIST name the destination. The
// server writes only the last one given, but its key specifications name
// them all, and so does the proxy.
var georadiusOptions = []keyOption{
	{name: "WITHCOORD"}, {name: "WITHDIST"}, {name: "WITHHASH"}, {name: "ANY"}, {name: "ASC"}, {name: "DESC"},
	{name: "COUNT", args: 1}, {name: "STORE", args: 1, key: true}, {name: "STOREDIST", args: 1, key: true},
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
	// One key, the first argument; arity as the server's (COMMAND INFO).
	single := func(arity int, names string) {
		add(command{kind: kindSingle, arity: arity, keyAt: 1, lastKey: 1, step: 1}, names)
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
	add(command{kind: kindSingle, arity: -3, keyAt: 2, lastKey: 2, step: 1}, "OBJECT")
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
		add(command{kind: kindSameServer, arity: arity, keyAt: keyAt, lastKey: lastKey, step: step}, names)
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
	add(command{kind: kindSameServer, arity: -3, numkeysAt: 1}, "ZUNION ZINTER ZDIFF ZINTERCARD SINTERCARD")
	add(command{kind: kindSameServer, arity: -4, numkeysAt: 1}, "LMPOP ZMPOP")
	add(command{kind: kindSameServer, arity: -3, numkeysAt: 2}, "EVAL EVALSHA EVAL_RO EVALSHA_RO FCALL FCALL_RO")
	add(command{kind: kindSameServer, arity: -4, keyAt: 1, lastKey: 1, step: 1, numkeysAt: 2}, "ZUNIONSTORE ZINTERSTORE ZDIFFSTORE")

	// A source key and the destination of an option, when given.
	withOptions := func(arity, optsAt int, opts []keyOption, names string) {
		add(command{kind: kindSameServer, arity: arity, keyAt: 1, lastKey: 1, step: 1, optsAt: optsAt, opts: opts}, names)
	}
	withOptions(-2, 2, sortOptions, "SORT")
	withOptions(-6, 6, georadiusOptions, "GEORADIUS")
	withOptions(-5, 5, georadiusOptions, "GEORADIUSBYMEMBER")

	split := func(arity, step int, merge uint8, names string) {
		add(command{kind: kindSplit, arity: arity, keyAt: 1, lastKey: -step, step: step, merge: merge}, names)
	}
	split(-2, 1, mergeArray, "MGET")
	split(-3, 2, mergeOK, "MSET")
	split(-2, 1, mergeSum, "DEL UNLINK EXISTS TOUCH")

	// Answered by the proxy, which checks their arguments itself.
	add(command{kind: kindLocal, arity: -1}, "PING ECHO QUIT SELECT HELLO CLIENT COMMAND INFO AUTH CONFIG")
	add(command{kind: kindLocal, arity: 1}, "RESET")

	// Transactions and blocking commands run on a session connection of
	// the client's own (session.go).
	tx := func(sess uint8, names string) { add(command{kind: kindSession, arity: 1, sess: sess}, names) }
	tx(sessMulti, "MULTI")
	tx(sessExec, "EXEC")
	tx(sessDiscard, "DISCARD")
	tx(sessUnwatch, "UNWATCH")
	add(command{kind: kindSession, arity: -2, keyAt: 1, lastKey: -1, step: 1, sess: sessWatch}, "WATCH")
	blocking := func(c command, names string) {
		c.kind, c.sess = kindSameServer, sessBlocking
		add(c, names)
	}
	blocking(command{arity: -3, keyAt: 1, lastKey: -2, step: 1}, "BLPOP BRPOP BZPOPMIN BZPOPMAX")
	blocking(command{arity: 4, keyAt: 1, lastKey: 2, step: 1}, "BRPOPLPUSH")
	blocking(command{arity: 6, keyAt: 1, lastKey: 2, step: 1}, "BLMOVE")
	blocking(command{arity: -5, numkeysAt: 2}, "BLMPOP BZMPOP")

	// Pub/sub (pubsub.go): a channel lives where a key of its name does.
	pubsub := func(sub uint8, arity int, names string) {
		add(command{kind: kindPubSub, arity: arity, subscription: sub}, names)
	}
	pubsub(subChannel, -2, "SUBSCRIBE")
	pubsub(subChannel|subEnd, -1, "UNSUBSCRIBE")
	pubsub(subPattern, -2, "PSUBSCRIBE")
	pubsub(subPattern|subEnd, -1, "PUNSUBSCRIBE")
	pubsub(subShard, -2, "SSUBSCRIBE")
	pubsub(subShard|subEnd, -1, "SUNSUBSCRIBE")
	pubsub(subInfo, -2, "PUBSUB")
	add(command{kind: kindSingle, arity: 3, keyAt: 1, lastKey: 1, step: 1, channel: true}, "PUBLISH SPUBLISH")

	// Sent to every server of the pool and merged (keyspace.go); the
	// server's arity.
	add(command{kind: kindKeyspace, arity: 1}, "DBSIZE RANDOMKEY")
	add(command{kind: kindKeyspace, arity: 2}, "KEYS")
	add(command{kind: kindKeyspace, arity: -2}, "SCAN")
	add(command{kind: kindKeyspace, arity: -1}, "FLUSHDB FLUSHALL")

	unsupported := func(names string) { add(command{kind: kindUnsupported, arity: -1}, names) }
	// MOVE and MIGRATE take a key out of the pool's database, SWAPDB
	// swaps whole databases.
	unsupported("SWAPDB MOVE MIGRATE WAIT WAITAOF")
	unsupported("SAVE BGSAVE BGREWRITEAOF LASTSAVE SHUTDOWN SLAVEOF REPLICAOF SYNC PSYNC")
	unsupported("MONITOR DEBUG SLOWLOG LATENCY MODULE ACL CLUSTER READONLY READWRITE")
	unsupported("SCRIPT FUNCTION TIME LOLWUT FAILOVER ROLE OBJECT_FREQ")
	for _, n := range strings.Fields(readOnlyNames) {
		m[n].readonly = true
	}
	numberCommands(m)
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

// keysErr says why a request's keys could not be found.
type keysErr uint8

const (
	keysOK         keysErr = iota
	keysArity              // the fixed range does not fit the arguments
	keysNumkeys            // numkeys is not a count of the arguments that follow it
	keysNone               // the request names no key (EVAL with numkeys 0)
	keysSubcommand         // no such subcommand (XINFO FOO)
	keysSubArity           // the subcommand's arity does not fit
	keysSyntax             // XREAD without a STREAMS option where the server looks for it
	keysUnbalanced         // XREAD's STREAMS not followed by as many IDs as keys
	// keysBlocking: XREAD or XREADGROUP with BLOCK, whose keys are
	// found all the same.
	keysBlocking
)

// arityOK reports whether a request of n arguments (with the name) has the
// number of arguments the server takes.
func (c *command) arityOK(n int) bool {
	if c.arity < 0 {
		return n >= -c.arity
	}
	return n == c.arity
}

// keys appends the keys of a request to dst: those the server finds in it
// (COMMAND GETKEYS) and so writes or reads. args has as many arguments as
// c.arity asks.
func (c *command) keys(dst, args [][]byte) ([][]byte, keysErr) {
	switch {
	case c.subs != nil:
		return c.subKeys(dst, args)
	case c.keysFunc != nil:
		return c.keysFunc(dst, args)
	}
	start := len(dst)
	if c.keyAt > 0 {
		last := c.lastKey
		if last < 0 {
			last += len(args)
		}
		if last < c.keyAt || last >= len(args) || (last-c.keyAt)%c.step != 0 {
			return dst, keysArity
		}
		for i := c.keyAt; i <= last; i += c.step {
			dst = append(dst, args[i])
		}
	}
	if c.numkeysAt > 0 {
		n, ok := parseCount(args[c.numkeysAt])
		first := c.numkeysAt + 1
		if !ok || n > len(args)-first {
			return dst, keysNumkeys
		}
		dst = append(dst, args[first:first+n]...)
	}
	if c.opts != nil {
		dst = c.optionKeys(dst, args)
	}
	if len(dst) == start {
		return dst, keysNone
	}
	return dst, keysOK
}

// optionKeys appends the keys named by the options from c.optsAt on, parsed
// as the server parses them: an option takes its arguments only when they
// are there. An argument that is no option (the server refuses the request
// with a syntax error, writing nothing) is passed over like an option
// without arguments, as the server's own sortGetKeys does, so that an
// option of a newer server cannot hide a STORE after it.
func (c *command) optionKeys(dst, args [][]byte) [][]byte {
	lastAt := -1 // dst index of the key of a "last" option
	for i := c.optsAt; i < len(args); {
		o := c.option(args[i], len(args)-i-1)
		switch {
		case o == nil:
			i++
			continue
		case o.key && o.last && lastAt >= 0:
			dst[lastAt] = args[i+1]
		case o.key && o.last:
			lastAt = len(dst)
			dst = append(dst, args[i+1])
		case o.key:
			dst = append(dst, args[i+1])
		}
		i += 1 + o.args
	}
	return dst
}

// option finds the option named arg, in any case, that takes at most left
// arguments.
func (c *command) option(arg []byte, left int) *keyOption {
	for i := range c.opts {
		o := &c.opts[i]
		if o.args <= left && upperEqual(o.name, arg) {
			return o
		}
	}
	return nil
}

// upperEqual reports whether b is the upper-case ASCII name in any case, as
// the server's strcasecmp compares, without allocating.
func upperEqual(name string, b []byte) bool {
	if len(name) != len(b) {
		return false
	}
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != name[i] {
			return false
		}
	}
	return true
}
