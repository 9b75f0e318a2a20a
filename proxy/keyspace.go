package proxy

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/commands"
	"github.com/shardproxy/shardproxy/pools"
)

// The keyspace commands (commands.Keyspace) are about every key of the pool,
// so they go to every server the pool talks to (routing.servers: its
// servers in file order, then those of migrate_from that are not among
// them), ejected or not: a server that cannot be reached makes the
// command answer its error rather than a part of the keyspace. KEYS is
// the union of every server's keys, DBSIZE their sum, FLUSHDB and
// FLUSHALL run on every server when the pool allows it (allow_flush), and
// RANDOMKEY is a random server's random key, the others' when it has
// none. SCAN walks the servers one after another (scanCursor). In a
// cluster pool the servers are the primaries of the slot map, in its
// order (replicas hold copies): a SCAN sees every key once while the map
// does not change.

// keyspace serves a keyspace command.
func (r *redisProto) keyspace(cl *client, bt *batch, cmd *commands.Command, args [][]byte, frame []byte) {
	switch cmd.Name {
	case "SCAN":
		r.scan(cl, bt, args)
	case "KEYS":
		r.everyServer(cl, bt, frame, commands.MergeConcat)
	case "DBSIZE":
		r.everyServer(cl, bt, frame, commands.MergeSum)
	case "RANDOMKEY":
		r.everyServer(cl, bt, frame, commands.MergeRandom)
	default: // FLUSHDB, FLUSHALL
		if !bt.rt.cfg.AllowFlush {
			errorReply(bt, fmt.Sprintf("ERR '%s' would empty every server of pool %s: it is refused unless the pool has allow_flush: true",
				strings.ToLower(cmd.Name), bt.rt.cfg.Name))
			return
		}
		r.everyServer(cl, bt, frame, commands.MergeOK)
	}
}

// everyServer sends the request to every server of the pool, its replies
// merged by merge.
func (r *redisProto) everyServer(cl *client, bt *batch, frame []byte, merge uint8) {
	servers := bt.rt.servers
	bt.answers = append(bt.answers, answer{first: bt.ncalls, n: len(servers), merge: merge})
	if len(servers) > 1 {
		r.p.stats.fragments.Add(int64(len(servers)))
	}
	for _, srv := range servers {
		bt.send(cl, srv, frame, 0, false)
	}
}

// A SCAN cursor of the proxy is one decimal number that holds the index of
// a server in the pool's list (routing.servers) and that server's own
// cursor: cursor = server cursor × scanBase + index. scanBase is 1000 for
// pools of up to 1000 servers (the cursor's last three digits are the
// index), and the next power of ten for larger pools. Cursor 0 starts at
// the first server; when a server's own walk ends, the next cursor is the
// next server's index (its own cursor 0), and after the last server, 0.

// scanBase is the multiplier of the server cursor in a pool of n servers.
func scanBase(n int) uint64 {
	base := uint64(1000)
	for uint64(n) > base {
		base *= 10
	}
	return base
}

// parseCursor parses a cursor as the server does (strtoul in
// parseScanCursorOrReply): decimal digits after an optional sign, a
// negative value wrapping; no space, nothing after the digits, no
// overflow. The empty string is 0.
func parseCursor(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, true
	}
	neg := false
	digits := b
	if b[0] == '-' || b[0] == '+' {
		neg, digits = b[0] == '-', b[1:]
	}
	v, err := strconv.ParseUint(string(digits), 10, 64)
	if err != nil {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

// scan sends a SCAN to the server its cursor names, with that server's
// own cursor; the reply's cursor is made the pool's (commands.MergeScan).
func (r *redisProto) scan(cl *client, bt *batch, args [][]byte) {
	servers := bt.rt.servers
	v, ok := parseCursor(args[1])
	base := scanBase(len(servers))
	if !ok || v%base >= uint64(len(servers)) {
		errorReply(bt, "ERR invalid cursor")
		return
	}
	idx := int(v % base)
	start := len(bt.scratch)
	bt.scratch = resp.AppendArray(bt.scratch, len(args))
	bt.scratch = resp.AppendBulk(bt.scratch, args[0])
	var num [20]byte
	bt.scratch = resp.AppendBulk(bt.scratch, strconv.AppendUint(num[:0], v/base, 10))
	for _, a := range args[2:] {
		bt.scratch = resp.AppendBulk(bt.scratch, a)
	}
	// The walk's position rides in the answer's span of bt.order: the
	// server's index and the number of servers.
	orderStart := len(bt.order)
	bt.order = append(bt.order, idx, len(servers))
	bt.answers = append(bt.answers, answer{first: bt.ncalls, n: 1, merge: commands.MergeScan, order: [2]int{orderStart, len(bt.order)}})
	bt.send(cl, servers[idx], bt.scratch[start:], 0, false)
}

// mergeKeyspace appends the reply of a keyspace command merged by
// commands.MergeConcat, MergeRandom or MergeScan.
func (r *redisProto) mergeKeyspace(dst []byte, bt *batch, s *answer, calls []*pools.Call) []byte {
	if s.merge == commands.MergeRandom {
		return r.randomKey(dst, calls)
	}
	for _, c := range calls {
		switch {
		case c.Err != nil:
			r.p.stats.forwardError.Add(1)
			return resp.AppendError(dst, "ERR "+c.Err.Error())
		case resp.IsError(c.Reply):
			return append(dst, c.Reply...)
		}
	}
	if s.merge == commands.MergeScan {
		walk := bt.order[s.order[0]:s.order[1]]
		return scanReply(dst, calls[0].Reply, walk[0], walk[1])
	}
	// KEYS: one array of every server's keys.
	total := 0
	for _, c := range calls {
		n, _, err := resp.ReadArrayHeader(c.Reply)
		if err != nil || n < 0 {
			return badReply(dst, c.Reply)
		}
		total += n
	}
	dst = resp.AppendArray(dst, total)
	for _, c := range calls {
		_, hn, _ := resp.ReadArrayHeader(c.Reply)
		dst = append(dst, c.Reply[hn:]...)
	}
	return dst
}

// scanReply appends a server's SCAN reply with the pool's cursor: that of
// the server's next page, or of the next server's first when the server's
// walk is over, or 0 after the last server.
func scanReply(dst, reply []byte, idx, n int) []byte {
	count, hn, err := resp.ReadArrayHeader(reply)
	if err != nil || count != 2 {
		return badReply(dst, reply)
	}
	cur, cn, err := resp.ReadBulkString(reply[hn:])
	if err != nil {
		return badReply(dst, reply)
	}
	v, ok := parseCursor(cur)
	base := scanBase(n)
	var next uint64
	switch {
	case !ok:
		return badReply(dst, reply)
	case v > (^uint64(0)-uint64(idx))/base:
		return resp.AppendError(dst, "ERR the server's SCAN cursor is too large for the proxy's cursor: "+string(cur))
	case v != 0:
		next = v*base + uint64(idx)
	case idx+1 < n:
		next = uint64(idx + 1)
	}
	dst = resp.AppendArray(dst, 2)
	var num [20]byte
	dst = resp.AppendBulk(dst, strconv.AppendUint(num[:0], next, 10))
	return append(dst, reply[hn+cn:]...)
}

// randomKey appends RANDOMKEY's reply: the key of a random server, else
// of the next that has one, in the servers' order; a null (in the
// client's protocol, as its server sent it) when every server answered
// that it has no key, else the first error.
func (r *redisProto) randomKey(dst []byte, calls []*pools.Call) []byte {
	start := rand.IntN(len(calls))
	var failed, null *pools.Call
	for i := range calls {
		c := calls[(start+i)%len(calls)]
		switch {
		case c.Err != nil || resp.IsError(c.Reply):
			if failed == nil {
				failed = c
			}
		case isNull(c.Reply):
			null = c
		default:
			return append(dst, c.Reply...)
		}
	}
	switch {
	case failed != nil && failed.Err != nil:
		r.p.stats.forwardError.Add(1)
		return resp.AppendError(dst, "ERR "+failed.Err.Error())
	case failed != nil:
		return append(dst, failed.Reply...)
	}
	return append(dst, null.Reply...)
}

// isNull reports whether a reply is a null: RESP2's "$-1" or "*-1",
// RESP3's "_".
func isNull(reply []byte) bool {
	s := string(reply)
	return s == "$-1\r\n" || s == "_\r\n" || s == "*-1\r\n"
}
