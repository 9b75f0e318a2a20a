package proxy

import (
	"github.com/shardproxy/shardproxy/commands"
	"github.com/shardproxy/shardproxy/pools"
)

// block runs a blocking command on a session connection of its own to the
// server of its keys, and waits for its reply (see await).
func (r *redisProto) block(cl *client, bt *batch, cmd *commands.Command, args [][]byte, frame []byte) {
	cl.sess = &session{}
	r.keyed(cl, bt, cmd, args, frame)
	cl.endSession(true)
}

// blockAside runs a blocking command of a watching client whose keys
// live on another server (ring index si) than its watched keys: on a
// session connection of its own, as block does, and never on a connection
// that other clients share. The watch stays.
func (r *redisProto) blockAside(cl *client, bt *batch, si int, frame []byte) {
	watch := cl.sess
	cl.sess = &session{}
	if r.choose(cl, bt, si) {
		r.await(cl, bt, cl.sess.conn, frame)
	}
	cl.endSession(true)
	cl.sess = watch
}

// await sends a blocking command on conn and waits for its reply, or for
// the client to hang up: then the connection is closed under the command,
// so that the server unblocks it at once and pops nothing for nobody.
func (r *redisProto) await(cl *client, bt *batch, conn *pools.SessionConn, frame []byte) {
	rep, hup, err := cl.waitReply(conn, frame, false)
	switch {
	case hup:
		cl.endSession(false)
		cl.leaving = true
	case err != nil:
		r.sessionFailed(cl, bt, err)
	case bt.rt.slots != nil:
		r.followBlocking(cl, bt, frame, rep)
	default:
		localReply(bt, rep)
	}
}

// waitReply writes frame on conn (glued behind ASKING when asking) and
// waits for its reply, or for the client to hang up: then the connection
// is interrupted under the command (hup), so that the server unblocks it
// at once and pops nothing for nobody, and the caller closes it.
func (cl *client) waitReply(conn *pools.SessionConn, frame []byte, asking bool) (rep []byte, hup bool, err error) {
	if asking {
		err = conn.Write(append(append([]byte(nil), askingFrame...), frame...))
	} else {
		err = conn.Write(frame)
	}
	if err != nil {
		return nil, false, err
	}
	type result struct {
		rep []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := conn.ReadReply()
		if asking && err == nil {
			rep, err = conn.ReadReply() // the request's, after ASKING's +OK
		}
		done <- result{rep, err}
	}()
	hups, stop := cl.p.hangups.Watch(cl.fd)
	defer stop()
	select {
	case res := <-done:
		return res.rep, false, res.err
	case <-hups:
		conn.Interrupt()
		<-done
		return nil, true, nil
	}
}
