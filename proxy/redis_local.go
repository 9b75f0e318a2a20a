package proxy

import (
	"crypto/subtle"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/commands"
)

// Version is the proxy's version, reported by INFO, HELLO and -V.
const Version = "0.1.0"

// redisCompat is the Redis version the proxy reports to clients that check
// one (INFO's redis_version, HELLO's version).
const redisCompat = "7.0.0"

// local answers a command the proxy serves itself. It returns true for QUIT.
func (r *redisProto) local(cl *client, bt *batch, cmd *commands.Command, args [][]byte) bool {
	start := bt.localStart()
	defer func() { bt.localEnd(start) }()
	dst := bt.local
	switch cmd.Name {
	case "PING":
		switch len(args) {
		case 1:
			dst = append(dst, "+PONG\r\n"...)
		case 2:
			dst = resp.AppendBulk(dst, args[1])
		default:
			dst = resp.AppendError(dst, commands.ArityError(args[0]))
		}
	case "ECHO":
		if len(args) != 2 {
			dst = resp.AppendError(dst, commands.ArityError(args[0]))
		} else {
			dst = resp.AppendBulk(dst, args[1])
		}
	case "QUIT":
		bt.local = append(dst, okReply...)
		cl.countEnd(&r.p.stats.clientEOF) // the client leaves, as nutcracker counts it
		return true
	case "SELECT":
		switch {
		case len(args) != 2:
			dst = resp.AppendError(dst, commands.ArityError(args[0]))
		case string(args[1]) == "0":
			dst = append(dst, okReply...)
		default:
			dst = resp.AppendError(dst, "ERR SELECT is not allowed: the proxy serves database 0 only (set redis_db in the pool)")
		}
	case "AUTH":
		dst = r.authenticate(cl, dst, args)
	case "RESET":
		// As Redis: no transaction, watch or subscription left, RESP2,
		// no name, and authenticated again only without redis_auth.
		cl.endSession(false)
		cl.resetSubscriptions()
		cl.resp3, cl.name, cl.authed = false, "", false
		dst = append(dst, "+RESET\r\n"...)
	case "HELLO":
		dst = r.hello(cl, dst, args)
	case "CLIENT":
		dst = r.clientCmd(cl, dst, args)
	case "COMMAND":
		dst = r.commandCmd(cl, dst, args)
	case "INFO":
		dst = appendText(dst, cl.resp3, r.info())
	case "CONFIG":
		switch {
		case len(args) >= 3 && strings.EqualFold(string(args[1]), "GET"):
			dst = appendMap(dst, cl.resp3, 0)
		case len(args) == 2 && strings.EqualFold(string(args[1]), "GET"):
			dst = resp.AppendError(dst, "ERR wrong number of arguments for 'config|get' command")
		default:
			dst = resp.AppendError(dst, "ERR command 'config' is not supported by the proxy (only CONFIG GET, which answers an empty list)")
		}
	}
	bt.local = dst
	return false
}

// authenticate answers AUTH [user] password as nutcracker does.
func (r *redisProto) authenticate(cl *client, dst []byte, args [][]byte) []byte {
	if len(args) < 2 || len(args) > 3 {
		return resp.AppendError(dst, commands.ArityError(args[0]))
	}
	if r.p.routing().cfg.RedisAuth == "" {
		return resp.AppendError(dst, "ERR Client sent AUTH, but no password is set")
	}
	if !r.checkAuth(args[1:]) {
		cl.authed = false
		return resp.AppendError(dst, "ERR invalid password")
	}
	cl.authed = true
	return append(dst, okReply...)
}

// checkAuth checks [user] password against redis_auth; the user may be
// "default" or the pool's redis_username.
func (r *redisProto) checkAuth(cred [][]byte) bool {
	pw := cred[len(cred)-1]
	user, acl := string(cred[0]), r.p.routing().cfg.RedisUsername
	if len(cred) == 2 && user != "default" && (acl == "" || user != acl) {
		return false
	}
	return subtle.ConstantTimeCompare(pw, []byte(r.p.routing().cfg.RedisAuth)) == 1
}

// hello answers HELLO [protover [AUTH user pass] [SETNAME name]] as Redis
// 7 does: it checks the version, then the options, authenticates, names
// the client and only then switches its protocol (2: RESP2, 3: RESP3), and
// answers in the protocol now in force.
func (r *redisProto) hello(cl *client, dst []byte, args [][]byte) []byte {
	resp3 := cl.resp3
	if len(args) >= 2 {
		ver, err := strconv.ParseInt(string(args[1]), 10, 64)
		switch {
		case err != nil:
			return resp.AppendError(dst, "ERR Protocol version is not an integer or out of range")
		case ver < 2 || ver > 3:
			return resp.AppendError(dst, "NOPROTO unsupported protocol version")
		}
		resp3 = ver == 3
	}
	var cred [][]byte
	var name []byte
	for i := 2; i < len(args); i++ {
		switch {
		case strings.EqualFold(string(args[i]), "AUTH") && i+2 < len(args):
			cred = args[i+1 : i+3]
			i += 2
		case strings.EqualFold(string(args[i]), "SETNAME") && i+1 < len(args):
			name = args[i+1]
			i++
		default:
			return resp.AppendError(dst, fmt.Sprintf("ERR Syntax error in HELLO option '%s'", resp.Clip(args[i])))
		}
	}
	if cred != nil {
		// Without redis_auth the proxy's only user is "default", who
		// needs no password, as Redis's is by default.
		if r.p.routing().cfg.RedisAuth == "" && string(cred[0]) != "default" || r.p.routing().cfg.RedisAuth != "" && !r.checkAuth(cred) {
			return resp.AppendError(dst, "WRONGPASS invalid username-password pair or user is disabled.")
		}
		cl.authed = true
	}
	if r.p.routing().cfg.RedisAuth != "" && !cl.authed {
		return resp.AppendError(dst, "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
	}
	if name != nil {
		if !validClientName(name) {
			return resp.AppendError(dst, badClientName)
		}
		cl.name = string(name)
	}
	cl.resp3 = resp3
	cl.subscriptionProtocol(resp3)
	proto := int64(2)
	if resp3 {
		proto = 3
	}
	dst = appendMap(dst, resp3, 7)
	dst = resp.AppendBulkString(dst, "server")
	dst = resp.AppendBulkString(dst, "redis")
	dst = resp.AppendBulkString(dst, "version")
	dst = resp.AppendBulkString(dst, redisCompat)
	dst = resp.AppendBulkString(dst, "proto")
	dst = resp.AppendInt(dst, proto)
	dst = resp.AppendBulkString(dst, "id")
	dst = resp.AppendInt(dst, int64(cl.id))
	dst = resp.AppendBulkString(dst, "mode")
	dst = resp.AppendBulkString(dst, "standalone")
	dst = resp.AppendBulkString(dst, "role")
	dst = resp.AppendBulkString(dst, "master")
	dst = resp.AppendBulkString(dst, "modules")
	return resp.AppendArray(dst, 0)
}

// badClientName is Redis's error for a client name it refuses.
const badClientName = "ERR Client names cannot contain spaces, newlines or special characters."

// validClientName reports whether Redis accepts name as a client name:
// printable ASCII without spaces.
func validClientName(name []byte) bool {
	for _, c := range name {
		if c < '!' || c > '~' {
			return false
		}
	}
	return true
}

// clientCmd answers the CLIENT subcommands that make sense per proxy client.
func (r *redisProto) clientCmd(cl *client, dst []byte, args [][]byte) []byte {
	if len(args) < 2 {
		return resp.AppendError(dst, commands.ArityError(args[0]))
	}
	sub := strings.ToUpper(string(args[1]))
	switch {
	case sub == "SETNAME" && len(args) == 3:
		if !validClientName(args[2]) {
			return resp.AppendError(dst, badClientName)
		}
		cl.name = string(args[2])
		return append(dst, okReply...)
	case sub == "GETNAME" && len(args) == 2:
		if cl.name == "" {
			return appendNull(dst, cl.resp3)
		}
		return resp.AppendBulkString(dst, cl.name)
	case sub == "SETINFO" && len(args) == 4:
		return append(dst, okReply...)
	case sub == "ID" && len(args) == 2:
		return resp.AppendInt(dst, int64(cl.id))
	case (sub == "NO-EVICT" || sub == "NO-TOUCH") && len(args) == 3:
		return append(dst, okReply...)
	case sub == "INFO" && len(args) == 2, sub == "LIST" && (len(args) == 2 || len(args) == 4 && strings.EqualFold(string(args[2]), "TYPE")):
		// The caller's own line, as Redis writes it: the proxy's other
		// clients are no one else's business (RQ finds its address here).
		return appendText(dst, cl.resp3, []byte(r.clientLine(cl)))
	case clientServed[sub]:
		// A subcommand the proxy serves, with the wrong number of
		// arguments: Redis's error names it as "client|sub".
		return resp.AppendError(dst, fmt.Sprintf("ERR wrong number of arguments for 'client|%s' command", strings.ToLower(sub)))
	}
	return resp.AppendError(dst, fmt.Sprintf("ERR 'client %s' is not supported by the proxy", strings.ToLower(resp.Clip(args[1]))))
}

// clientServed are the CLIENT subcommands clientCmd serves.
var clientServed = map[string]bool{"SETNAME": true, "GETNAME": true, "SETINFO": true, "ID": true, "NO-EVICT": true, "NO-TOUCH": true,
	"INFO": true, "LIST": true}

// clientLine is the client's line of CLIENT LIST and CLIENT INFO, with
// Redis 7's fields.
func (r *redisProto) clientLine(cl *client) string {
	sub, psub, ssub := 0, 0, 0
	if sb := cl.sub.Load(); sb != nil {
		sb.mu.Lock()
		sub, psub, ssub = len(sb.channels), len(sb.patterns), len(sb.shards)
		sb.mu.Unlock()
	}
	multi, flags := -1, "N"
	if cl.sess != nil && cl.sess.multi {
		multi, flags = 0, "x"
	}
	if sub+psub+ssub > 0 {
		flags = "P"
	}
	proto := 2
	if cl.resp3 {
		proto = 3
	}
	remote, local := cl.addrs()
	return fmt.Sprintf("id=%d addr=%s laddr=%s fd=%d name=%s age=0 idle=0 flags=%s db=0 sub=%d psub=%d ssub=%d multi=%d qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=client|list user=default redir=-1 resp=%d\n",
		cl.id, remote, local, max(cl.fd, 0), cl.name, flags, sub, psub, ssub, multi, proto)
}

// commandCmd answers COMMAND, COMMAND COUNT, COMMAND DOCS and COMMAND INFO
// with what the proxy knows: its table has no per-command documentation.
func (r *redisProto) commandCmd(cl *client, dst []byte, args [][]byte) []byte {
	if len(args) == 1 {
		return resp.AppendArray(dst, 0)
	}
	switch strings.ToUpper(string(args[1])) {
	case "COUNT":
		return resp.AppendInt(dst, int64(commands.Len()))
	case "DOCS":
		return appendMap(dst, cl.resp3, 0)
	case "LIST":
		return resp.AppendArray(dst, 0)
	case "INFO":
		dst = resp.AppendArray(dst, len(args)-2)
		for range args[2:] {
			dst = appendNull(dst, cl.resp3)
		}
		return dst
	}
	return resp.AppendError(dst, fmt.Sprintf("ERR 'command %s' is not supported by the proxy", strings.ToLower(resp.Clip(args[1]))))
}

// info is INFO's text: the proxy's own section and its pool.
func (r *redisProto) info() []byte {
	p := r.p
	rt := p.routing()
	var b strings.Builder
	fmt.Fprintf(&b, "# Server\r\nredis_version:%s\r\nproxy:shardproxy\r\nproxy_version:%s\r\nredis_mode:standalone\r\n", redisCompat, Version)
	fmt.Fprintf(&b, "uptime_in_seconds:%d\r\n\r\n", int(time.Since(p.started).Seconds()))
	fmt.Fprintf(&b, "# Proxy\r\npool:%s\r\nhash:%s\r\ndistribution:%s\r\n", rt.cfg.Name, rt.cfg.Hash, rt.cfg.Distribution)
	fmt.Fprintf(&b, "client_connections:%d\r\nrequests:%d\r\nfragments:%d\r\nforward_error:%d\r\nservers:%d\r\n",
		p.stats.clientConnections.Load(), p.stats.requests.Load(), p.stats.fragments.Load(), p.stats.forwardError.Load(), len(rt.servers))
	for i, s := range rt.servers {
		state := "up"
		if s.Ejected() {
			state = "ejected"
		}
		fmt.Fprintf(&b, "server%d:name=%s,addr=%s,state=%s,requests=%d\r\n", i, s.Name(), s.Addr(), state, s.Stats.Requests.Load())
	}
	return []byte(b.String())
}
