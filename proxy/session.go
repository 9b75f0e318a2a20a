package proxy

import (
	"fmt"
	"strings"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/commands"
	"github.com/shardproxy/shardproxy/pools"
)

// A session is a client's transaction (MULTI ... EXEC), its watched keys
// (WATCH), or a blocking command: the requests run on a session connection
// of the client's own (pools.Server.Session) to the one server the keys
// live on, one at a time, each answered before the next is read, so that
// the server sees them as Redis would from the client itself. Whatever the
// server answers is the client's reply, byte for byte; the proxy answers
// only what it must decide itself (a key on another server, a transaction
// before its server is known).
//
// A transaction's server is chosen by its first command with a key (WATCH
// included): MULTI, and the keyless commands queued before, are sent then.
// A command whose keys live on another server is refused, and EXEC then
// answers Redis's -EXECABORT, nothing run. A connection goes back clean
// (after EXEC, DISCARD, or UNWATCH outside MULTI); a client that leaves
// mid-session has its connection closed, which the server forgets. A
// session whose connection fails (the server killed or moved) answers
// the error, and the transaction under way, or the one that follows a
// lost watch, aborts at EXEC: none of its commands runs unwatched or on
// another server. In a cluster pool the rule is Redis Cluster's, one
// slot, with its replies, and a stale map's MOVED is followed where it
// can be: see cluster_session.go.
type session struct {
	srv       *pools.Server
	conn      *pools.SessionConn // nil until a keyed command chose srv
	multi     bool               // inside MULTI
	sentMulti bool               // MULTI was sent on conn
	dirty     bool               // a command was refused inside MULTI: EXEC aborts
	crossSlot bool               // cluster: a command of another node's slot was queued: EXEC answers -CROSSSLOT
	queued    []byte             // keyless frames queued inside MULTI before conn
	nqueued   int
}

const (
	errExecAbort    = "EXECABORT Transaction discarded because of previous errors."
	errNestedMulti  = "ERR MULTI calls can not be nested"
	errWatchInMulti = "ERR WATCH inside MULTI is not allowed"
)

// inSession answers a request of a client that is in a session, or whose
// command starts one.
func (r *redisProto) inSession(cl *client, bt *batch, cmd *commands.Command, args [][]byte, frame []byte) {
	s := cl.sess
	switch {
	case cmd.Sess == commands.SessMulti:
		r.multi(cl, bt, frame)
	case cmd.Sess == commands.SessExec || cmd.Sess == commands.SessDiscard:
		r.endMulti(cl, bt, cmd, frame)
	case cmd.Sess == commands.SessUnwatch && (s == nil || !s.multi):
		if s == nil || s.conn == nil { // nothing watched, or the watch was lost
			localReply(bt, okReply)
			cl.sess = nil
			return
		}
		r.sessionDo(cl, bt, frame)
		cl.endSession(true)
	case s == nil && cmd.Sess == commands.SessBlocking:
		r.block(cl, bt, cmd, args, frame)
	case s == nil && cmd.Sess == commands.SessWatch:
		cl.sess = &session{}
		r.keyed(cl, bt, cmd, args, frame)
		if cl.sess != nil && cl.sess.conn == nil {
			cl.sess = nil // refused before it had a server
		}
	case s.multi && cmd.Kind == commands.Local:
		switch {
		case cmd.Name != "PING" && cmd.Name != "ECHO":
			r.reject(cl, bt, fmt.Sprintf("ERR '%s' inside a transaction is not supported by the proxy", strings.ToLower(cmd.Name)))
		case cmd.Name == "ECHO" && len(args) != 2:
			// Refused when queued, as the server does (its arity;
			// PING's is checked when EXEC runs it): the proxy may
			// queue it before the server is known.
			r.reject(cl, bt, commands.ArityError(args[0]))
		default:
			r.queue(cl, bt, frame)
		}
	case s.multi && cmd.Sess == commands.SessWatch && s.conn == nil:
		// Redis's answer, which does not doom the transaction; once
		// the server is known it answers itself.
		errorReply(bt, errWatchInMulti)
	case s.multi && cmd.Kind == commands.Session: // UNWATCH inside MULTI: queued
		r.queue(cl, bt, frame)
	case cmd.Kind == commands.Local:
		r.local(cl, bt, cmd, args)
	default:
		r.keyed(cl, bt, cmd, args, frame)
	}
}

// multi starts a transaction: answered by the proxy until a command
// chooses the server, then sent there ahead of it.
func (r *redisProto) multi(cl *client, bt *batch, frame []byte) {
	s := cl.sess
	switch {
	case s == nil:
		cl.sess = &session{multi: true}
		localReply(bt, okReply)
	case s.multi && s.conn == nil:
		errorReply(bt, errNestedMulti)
	case s.multi:
		r.sessionDo(cl, bt, frame)
	case s.conn == nil: // the watch was lost with its connection: EXEC aborts
		s.multi = true
		localReply(bt, okReply)
	default: // watching: the server's MULTI
		rep, err := r.roundTrip(s, frame)
		if err != nil {
			// The watch is lost: the transaction starts, to abort
			// at EXEC, so that none of its commands runs unwatched.
			cl.endSession(false)
			cl.sess = &session{multi: true, dirty: true}
			localReply(bt, okReply)
			return
		}
		localReply(bt, rep)
		if string(rep) == string(okReply) {
			s.multi, s.sentMulti = true, true
		}
	}
}

// endMulti answers EXEC or DISCARD, and ends the session.
func (r *redisProto) endMulti(cl *client, bt *batch, cmd *commands.Command, frame []byte) {
	s := cl.sess
	exec := cmd.Sess == commands.SessExec
	switch {
	case s == nil || !s.multi:
		if s != nil && s.conn != nil {
			r.sessionDo(cl, bt, frame) // the server's own "without MULTI"
			return
		}
		errorReply(bt, fmt.Sprintf("ERR %s without MULTI", cmd.Name))
		return
	case s.dirty || !exec || s.crossSlot:
		dirty := s.dirty
		if s.sentMulti {
			if rep, err := r.roundTrip(s, discardFrame); err != nil || string(rep) != string(okReply) {
				cl.endSession(false)
				s = nil
			}
		}
		switch {
		case exec && dirty:
			errorReply(bt, errExecAbort)
		case exec: // keys of two nodes' slots, as a node answers a transaction over two of its slots
			errorReply(bt, crossSlot)
		default:
			localReply(bt, okReply)
		}
		if s != nil {
			cl.endSession(true)
		}
		return
	}
	if s.conn == nil && !r.choose(cl, bt, bt.rt.anyServer()) {
		return
	}
	if rep := r.sessionDo(cl, bt, frame); rep != nil {
		cl.endSession(true)
	} else {
		cl.endSession(false) // answered the error: the client is out of MULTI, as after any EXEC
	}
}

var discardFrame = resp.AppendCommand(nil, []byte("DISCARD"))

var multiFrame = resp.AppendCommand(nil, []byte("MULTI"))

// queue queues a keyless command of a transaction: sent at once when the
// server is known, else kept and answered +QUEUED as the server will.
func (r *redisProto) queue(cl *client, bt *batch, frame []byte) {
	s := cl.sess
	if s.conn != nil {
		r.sessionDo(cl, bt, frame)
		return
	}
	s.queued = append(s.queued, frame...)
	s.nqueued++
	localReply(bt, queuedReply)
}

var queuedReply = []byte("+QUEUED\r\n")

// keyed runs a command with keys in the session: on its server, which the
// first such command chooses. Outside MULTI (while watching) a command for
// another server is served as any other.
func (r *redisProto) keyed(cl *client, bt *batch, cmd *commands.Command, args [][]byte, frame []byte) {
	s := cl.sess
	keys, err := cmd.Keys(bt.keys[:0], args)
	blocking := cmd.Sess == commands.SessBlocking || err == commands.KeysBlocking
	defer func() {
		clear(keys)
		bt.keys = keys[:0]
	}()
	switch {
	case cmd.Kind == commands.Unsupported:
		r.reject(cl, bt, fmt.Sprintf("ERR command '%s' is not supported by the proxy", strings.ToLower(cmd.Name)))
		return
	case err == commands.KeysNone && s.multi: // EVAL with no key, say: it runs where the transaction does
		r.queue(cl, bt, frame)
		return
	case err == commands.KeysNone:
		r.route(cl, bt, cmd, args, frame) // answers why it cannot
		return
	case err == commands.KeysBlocking: // XREAD ... BLOCK: keys found, and it blocks
		err = commands.KeysOK
	case err == commands.KeysNumkeys:
		r.reject(cl, bt, "ERR numkeys is not a valid count of the keys that follow")
		return
	case err != commands.KeysOK:
		r.reject(cl, bt, commands.ArityError(args[0]))
		return
	}
	si := bt.rt.locate(keys[0])
	if bt.rt.slots != nil && !sameSlot(keys) {
		r.reject(cl, bt, crossSlot) // the node's answer, which dooms a transaction too
		return
	}
	for _, k := range keys[1:] {
		if bt.rt.locate(k) != si {
			r.reject(cl, bt, fmt.Sprintf("ERR the keys of '%s' live on different servers: the proxy cannot serve it (put the keys under one hash tag)", strings.ToLower(cmd.Name)))
			return
		}
	}
	if si < 0 {
		r.noServer(bt)
		s.dirty = s.dirty || s.multi
		return
	}
	srv := bt.rt.ring[si]
	fresh := s.conn == nil // this command chooses the session's server
	owed := owedFrames{s.queued, s.nqueued}
	switch {
	case s.conn == nil:
		if bt.rt.mig != nil && !r.moveKeys(bt, keys) {
			s.dirty = s.dirty || s.multi
			return
		}
		if !r.choose(cl, bt, si) {
			return
		}
	case !sameServer(srv, s.srv) && bt.rt.slots != nil:
		r.otherNode(cl, bt, cmd, args, frame, si, blocking)
		return
	case !sameServer(srv, s.srv) && (s.multi || cmd.Sess == commands.SessWatch):
		r.reject(cl, bt, fmt.Sprintf("ERR the keys of '%s' live on another server than the transaction's: the proxy cannot serve it (put the transaction's keys under one hash tag)", strings.ToLower(cmd.Name)))
		return
	case !sameServer(srv, s.srv) && cmd.Sess == commands.SessBlocking: // watching: it blocks on a connection of its own
		if bt.rt.mig == nil || r.moveKeys(bt, keys) {
			r.blockAside(cl, bt, si, frame)
		}
		return
	case !sameServer(srv, s.srv): // watching: served as any other command
		r.route(cl, bt, cmd, args, frame)
		return
	case bt.rt.mig != nil && !r.moveKeys(bt, keys):
		s.dirty = s.dirty || s.multi
		return
	}
	if blocking && !s.multi {
		r.await(cl, bt, s.conn, frame)
		return
	}
	if bt.rt.slots != nil {
		r.clusterSessionDo(cl, bt, frame, fresh, owed)
		return
	}
	r.sessionDo(cl, bt, frame)
}

// sameServer says whether a and b are the same server: one object, or,
// across a reload that replaced the pool's servers, the same name at the
// same address (the session goes on on its connection to the old one).
func sameServer(a, b *pools.Server) bool {
	return a == b || a.Name() == b.Name() && a.Addr() == b.Addr()
}

// choose gives the session its server (ring index si) and a connection to
// it, and sends what the transaction owes it: MULTI and the commands
// queued before. It reports false, answered, when it cannot.
func (r *redisProto) choose(cl *client, bt *batch, si int) bool {
	if si < 0 {
		r.noServer(bt)
		cl.sess.dirty = true
		return false
	}
	return r.chooseServer(cl, bt, bt.rt.ring[si])
}

// chooseServer is choose for server srv.
func (r *redisProto) chooseServer(cl *client, bt *batch, srv *pools.Server) bool {
	s := cl.sess
	conn, err := srv.Session(cl.resp3)
	if err != nil {
		r.reject(cl, bt, "ERR "+err.Error())
		if !s.multi {
			cl.sess = nil
		}
		return false
	}
	s.srv, s.conn = srv, conn
	if !s.multi {
		return true
	}
	owed := append(append([]byte(nil), multiFrame...), s.queued...)
	n := 1 + s.nqueued
	s.queued, s.nqueued = nil, 0
	if err := conn.Write(owed); err != nil {
		r.sessionFailed(cl, bt, err)
		return false
	}
	// From here the server may be in MULTI: EXEC or DISCARD ends it
	// there, even when a queued command was refused.
	s.sentMulti = true
	for i := range n {
		rep, err := conn.ReadReply()
		if err != nil {
			r.sessionFailed(cl, bt, err)
			return false
		}
		if i == 0 && string(rep) != string(okReply) || i > 0 && resp.IsError(rep) {
			r.reject(cl, bt, "ERR the transaction's server refused it: "+strings.TrimPrefix(strings.TrimSpace(resp.Clip(rep)), "-"))
			return false
		}
	}
	return true
}

// sessionDo sends frame on the session's connection and answers the
// client with the server's reply, which it returns (nil when the
// connection failed: the client is answered an error and the session
// fails).
func (r *redisProto) sessionDo(cl *client, bt *batch, frame []byte) []byte {
	rep, err := r.roundTrip(cl.sess, frame)
	if err != nil {
		r.sessionFailed(cl, bt, err)
		return nil
	}
	localReply(bt, rep)
	return rep
}

// roundTrip sends frame on the session's connection and reads the reply.
func (r *redisProto) roundTrip(s *session, frame []byte) ([]byte, error) {
	if err := s.conn.Write(frame); err != nil {
		return nil, err
	}
	return s.conn.ReadReply()
}

// sessionFailed answers a request whose session connection failed: the
// connection is closed, a transaction under way can only abort, and a
// watch is lost, so that the transaction that follows aborts too (a
// blocking command's session ends with the command).
func (r *redisProto) sessionFailed(cl *client, bt *batch, err error) {
	errorReply(bt, "ERR "+err.Error())
	s := cl.sess
	cl.endSession(false)
	if s != nil {
		cl.sess = &session{multi: s.multi, dirty: true}
	}
}

// reject answers an error of the proxy's own; inside MULTI it also dooms
// the transaction, as the server does with a command it refuses.
func (r *redisProto) reject(cl *client, bt *batch, msg string) {
	errorReply(bt, msg)
	if cl.sess != nil && cl.sess.multi {
		cl.sess.dirty = true
	}
}

// wrongArity answers a request with a wrong number of arguments as the
// server does: it dooms the transaction under way, and EXEC's ends it
// (and the watch) with -EXECABORT, in MULTI or not.
func (r *redisProto) wrongArity(cl *client, bt *batch, cmd *commands.Command, args [][]byte) {
	if cmd.Sess != commands.SessExec {
		r.reject(cl, bt, commands.ArityError(args[0]))
		return
	}
	errorReply(bt, "EXECABORT Transaction discarded because of: "+strings.TrimPrefix(commands.ArityError(args[0]), "ERR "))
	cl.endSession(false) // closed: the server forgets its MULTI and watch
}

// endSession ends the client's session: its connection goes back when
// clean, else it is closed.
func (cl *client) endSession(clean bool) {
	s := cl.sess
	cl.sess = nil
	if s == nil || s.conn == nil {
		return
	}
	if clean {
		s.conn.Release()
	} else {
		s.conn.Close()
	}
}

// localReply records reply as the answer to the current request.
func localReply(bt *batch, reply []byte) {
	start := bt.localStart()
	bt.local = append(bt.local, reply...)
	bt.localEnd(start)
}

// anyServer is the ring index of the server of a transaction with no key:
// the first in the ring (-1 when there is none).
func (rt *routing) anyServer() int {
	return rt.locate(nil)
}
