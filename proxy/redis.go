package proxy

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/commands"
	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/pools"
)

// redisProto serves RESP clients (a pool with redis: true).
type redisProto struct {
	p *pool
}

func newRedisProto(p *pool) *redisProto {
	return &redisProto{p: p}
}

// redisServers is the RESP protocol towards a pool's servers.
type redisServers struct{}

func (redisServers) framer() pools.Framer {
	return func(b []byte, kind uint8) (int, error) {
		n, err := resp.ReadReply(b)
		if kind != kindAsking || n == 0 || err != nil {
			return n, err
		}
		// ASKING's reply, then the request's.
		m, err := resp.ReadReply(b[n:])
		if m == 0 || err != nil {
			return 0, err
		}
		return n + m, nil
	}
}

func (redisServers) isError(reply []byte) bool { return resp.IsError(reply) }

func (redisServers) ping() []byte { return resp.AppendCommand(nil, []byte("PING")) }

// hello3Frame switches a server connection to RESP3: its replies go to
// RESP3 clients as the server wrote them.
var hello3Frame = resp.AppendCommand(nil, []byte("HELLO"), []byte("3"))

func (redisServers) hello3() []byte { return hello3Frame }

func (redisServers) isPush(reply []byte) bool { return reply[0] == '>' }

// handshake authenticates and selects the database on each new server
// connection, as nutcracker does with redis_auth and redis_db; with
// redis_username it authenticates as that ACL user.
func (redisServers) handshake(cfg *config.Pool) [][]byte {
	var frames [][]byte
	switch {
	case cfg.RedisAuth != "" && cfg.RedisUsername != "":
		frames = append(frames, resp.AppendCommand(nil, []byte("AUTH"), []byte(cfg.RedisUsername), []byte(cfg.RedisAuth)))
	case cfg.RedisAuth != "":
		frames = append(frames, resp.AppendCommand(nil, []byte("AUTH"), []byte(cfg.RedisAuth)))
	}
	if cfg.RedisDB != 0 {
		frames = append(frames, resp.AppendCommand(nil, []byte("SELECT"), fmt.Appendf(nil, "%d", cfg.RedisDB)))
	}
	return append(frames, clusterHandshake(cfg)...)
}

func (r *redisProto) refuse(dst []byte) []byte {
	return resp.AppendError(dst, "ERR max number of clients reached")
}

func (r *redisProto) tooLarge(dst []byte) []byte {
	return resp.AppendError(dst, "ERR Protocol error: request too large")
}

// noServer answers a request whose key has no server in the ring (every
// server ejected): a forwarding error, as nutcracker counts it.
func (r *redisProto) noServer(bt *batch) {
	r.p.stats.forwardError.Add(1)
	if bt.rt.slots != nil {
		errorReply(bt, r.p.cluster.noSlot(bt.rt))
		return
	}
	errorReply(bt, "ERR no server available in pool "+bt.rt.cfg.Name)
}

// errorReply records a local error reply.
func errorReply(bt *batch, msg string) {
	start := bt.localStart()
	bt.local = resp.AppendError(bt.local, msg)
	bt.localEnd(start)
}

func (r *redisProto) parse(cl *client, b []byte, bt *batch) (int, bool) {
	req := &bt.rreq
	n, err := resp.ReadRequest(b, req, bt.rt.lim.resp)
	if err != nil {
		// The client is closed once answered: a client error, as
		// nutcracker counts a parse error.
		cl.countEnd(&r.p.stats.clientErr)
		errorReply(bt, "ERR "+err.Error())
		return len(b), true
	}
	if n == 0 || len(req.Args) == 0 {
		return n, false
	}
	args := req.Args
	frame := b[:n]
	if req.Inline {
		start := len(bt.scratch)
		bt.scratch = resp.AppendCommand(bt.scratch, args...)
		frame = bt.scratch[start:]
	}
	cmd := commands.Lookup(args[0])
	if cmd != nil && (bt.ncalls > 0 || cl.async) && (cmd.Name == "HELLO" && len(args) > 1 || cl.sess != nil || cmd.Sess != commands.SessNone ||
		cmd.Kind == commands.PubSub || cmd.Name == "RESET" || cl.sub.Load() != nil || cmd.BlockingRead(args)) {
		// A HELLO that may switch the protocol, and a request of a
		// session (session.go), wait for the replies of the requests
		// before them, which run on other connections: it starts the
		// next batch, so that no later request can overtake them. On
		// an event loop it goes to a goroutine (loop.go).
		cl.handOff = cl.async
		return 0, false
	}
	if cmd != nil {
		bt.countCommand(&r.p.stats, cmd.ID)
	} else {
		bt.countCommand(&r.p.stats, 0)
	}
	switch {
	case cmd == nil:
		r.reject(cl, bt, fmt.Sprintf("ERR unknown command '%s', with args beginning with: %s", resp.Clip(args[0]), argList(args[1:])))
		return n, false
	case bt.rt.cfg.RedisAuth != "" && !cl.authed && cmd.Name != "AUTH" && cmd.Name != "HELLO" && cmd.Name != "QUIT":
		errorReply(bt, "NOAUTH Authentication required.")
		return n, false
	case !cmd.ArityOK(len(args)):
		r.wrongArity(cl, bt, cmd, args)
		return n, false
	case cmd.Kind == commands.PubSub || cl.sub.Load() != nil && !cl.resp3 && cmd.Name != "QUIT" && cmd.Name != "RESET":
		r.pubsubRequest(cl, bt, cmd, args)
		return n, false
	case (cl.sess != nil || cmd.Sess != commands.SessNone) && cmd.Name != "QUIT" && cmd.Name != "RESET":
		r.inSession(cl, bt, cmd, args, frame)
		return n, false
	}
	switch cmd.Kind {
	case commands.Single, commands.SameServer, commands.Split:
		r.route(cl, bt, cmd, args, frame)
	case commands.Local:
		return n, r.local(cl, bt, cmd, args)
	case commands.Keyspace:
		r.keyspace(cl, bt, cmd, args, frame)
	default:
		errorReply(bt, fmt.Sprintf("ERR command '%s' is not supported by the proxy", strings.ToLower(cmd.Name)))
	}
	return n, false
}

// route forwards a request by its keys: whole to the server of all its keys,
// or split per server (commands.Split). While a migration is configured, the
// keys whose owner changed move first (moveKeys, migration.go).
func (r *redisProto) route(cl *client, bt *batch, cmd *commands.Command, args [][]byte, frame []byte) {
	keys, err := cmd.Keys(bt.keys[:0], args)
	switch {
	case err == commands.KeysBlocking: // XREAD or XREADGROUP with BLOCK: a session's
		r.block(cl, bt, cmd, args, frame)
	case err != commands.KeysOK:
		errorReply(bt, cmd.KeysError(err, args))
	case bt.rt.mig != nil && !r.moveKeys(bt, keys):
		// A key could not move: answered with the error.
	case cmd.Kind == commands.Split:
		r.split(cl, bt, cmd, args, frame)
	default:
		r.forward(cl, bt, cmd, keys, frame)
	}
	clear(keys)
	bt.keys = keys[:0]
}

// forward sends the whole frame to the server of keys[0], after checking
// that every key lives there too.
func (r *redisProto) forward(cl *client, bt *batch, cmd *commands.Command, keys [][]byte, frame []byte) {
	rt := bt.rt
	i := rt.locate(keys[0])
	if rt.slots != nil && !sameSlot(keys) {
		errorReply(bt, crossSlot)
		return
	}
	for _, k := range keys[1:] {
		if rt.locate(k) != i {
			errorReply(bt, fmt.Sprintf("ERR the keys of '%s' live on different servers: the proxy cannot serve it (put the keys under one hash tag)", strings.ToLower(cmd.Name)))
			return
		}
	}
	if i < 0 {
		r.noServer(bt)
		return
	}
	srv, primary := r.p.readServer(rt, cmd, i, cl.id)
	bt.forward(cl, srv, frame, 0, false)
	bt.viaReplica(primary)
}

// split sends a multi-key command as one fragment per server, or whole when
// all its keys live on one server.
func (r *redisProto) split(cl *client, bt *batch, cmd *commands.Command, args [][]byte, frame []byte) {
	rt := bt.rt
	step := cmd.Step
	frags, orderStart, ok := bt.group(args[1:], step)
	if !ok {
		r.noServer(bt)
		return
	}
	if len(frags) == 1 {
		bt.ungroup(orderStart)
		srv, primary := r.p.readServer(rt, cmd, fragServer(frags[0]), cl.id)
		bt.forward(cl, srv, frame, 0, false)
		bt.viaReplica(primary)
		return
	}
	order := bt.order[orderStart:]
	bt.answers = append(bt.answers, answer{first: bt.ncalls, n: len(frags), merge: cmd.Merge, order: [2]int{orderStart, len(bt.order)}})
	r.p.stats.fragments.Add(int64(len(frags)))
	for f, si := range frags {
		cnt := 0
		for _, o := range order {
			if o == f {
				cnt++
			}
		}
		start := len(bt.scratch)
		bt.scratch = resp.AppendArray(bt.scratch, 1+cnt*step)
		bt.scratch = resp.AppendBulk(bt.scratch, args[0])
		for k, o := range order {
			if o != f {
				continue
			}
			for j := 0; j < step; j++ {
				bt.scratch = resp.AppendBulk(bt.scratch, args[1+k*step+j])
			}
		}
		srv, primary := r.p.readServer(rt, cmd, fragServer(si), cl.id)
		bt.send(cl, srv, bt.scratch[start:], 0, false)
		bt.viaReplica(primary)
	}
}

// reply appends a forwarded or split request's reply.
func (r *redisProto) reply(dst []byte, bt *batch, s *answer) []byte {
	calls := bt.calls[s.first : s.first+s.n]
	if s.merge >= commands.MergeConcat {
		return r.mergeKeyspace(dst, bt, s, calls)
	}
	for _, c := range calls {
		if c.Err != nil {
			r.p.stats.forwardError.Add(1)
			return resp.AppendError(dst, "ERR "+c.Err.Error())
		}
	}
	if s.merge == commands.MergeNone {
		return append(dst, calls[0].Reply...)
	}
	for _, c := range calls {
		if resp.IsError(c.Reply) {
			return append(dst, c.Reply...)
		}
	}
	switch s.merge {
	case commands.MergeSum:
		var sum int64
		for _, c := range calls {
			v, _, err := resp.ReadInteger(c.Reply)
			if err != nil {
				return badReply(dst, c.Reply)
			}
			sum += v
		}
		return resp.AppendInt(dst, sum)
	case commands.MergeOK:
		for _, c := range calls {
			if !bytes.Equal(c.Reply, okReply) {
				return append(dst, c.Reply...)
			}
		}
		return append(dst, okReply...)
	default:
		return r.mergeArray(dst, bt, s, calls)
	}
}

var okReply = []byte("+OK\r\n")

// mergeArray puts the elements of MGET fragments back in key order.
func (r *redisProto) mergeArray(dst []byte, bt *batch, s *answer, calls []*pools.Call) []byte {
	order := bt.order[s.order[0]:s.order[1]]
	cur := bt.cursors[:0]
	for f, c := range calls {
		count, hn, err := resp.ReadArrayHeader(c.Reply)
		want := 0
		for _, o := range order {
			if o == f {
				want++
			}
		}
		if err != nil || count != want {
			return badReply(dst, c.Reply)
		}
		cur = append(cur, hn)
	}
	bt.cursors = cur[:0]
	start := len(dst)
	dst = resp.AppendArray(dst, len(order))
	for _, f := range order {
		rep := calls[f].Reply[cur[f]:]
		m, err := resp.ReadReply(rep)
		if err != nil || m == 0 {
			return badReply(dst[:start], calls[f].Reply)
		}
		dst = append(dst, rep[:m]...)
		cur[f] += m
	}
	return dst
}

func badReply(dst, reply []byte) []byte {
	return resp.AppendError(dst, "ERR unexpected reply from server: "+resp.Clip(reply))
}

func argList(args [][]byte) string {
	var sb strings.Builder
	for i, a := range args {
		if i == 8 {
			break
		}
		fmt.Fprintf(&sb, "'%s' ", resp.Clip(a))
	}
	return sb.String()
}

func (r *redisProto) requestNeed(b []byte) int { return resp.Need(b) }

// replyNeed reads a bulk reply's length header: "$N\r\n" needs N+2 more.
func (redisServers) replyNeed(b []byte) int { return resp.BulkNeed(b) }

func (r *redisProto) direct(bt *batch, s *answer) []byte {
	if s.n != 1 || s.merge != commands.MergeNone {
		return nil
	}
	c := bt.calls[s.first]
	if c.Err != nil {
		return nil
	}
	return c.Reply
}
