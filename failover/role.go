package failover

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/pools"
)

// A connection to a shard's primary asks ROLE last in its handshake and is
// used only if the answer says master; a connection to a replica, only if
// it says slave with the replica's link to its primary connected.

var (
	roleCommand         = resp.AppendCommand(nil, []byte("ROLE"))
	rolePrimary         = []byte("*3\r\n$6\r\nmaster\r\n")
	roleReplica         = []byte("slave")
	roleLinkUp          = []byte("connected")
	readonlyReply       = []byte("-READONLY")
	errNotAPrimary      = errors.New("ROLE does not say master: not the shard's primary (yet)")
	errRoleNotArray     = errors.New("unexpected ROLE reply")
	errNotAReplica      = errors.New("ROLE does not say slave: not a replica (detached from its primary?)")
	errReplicaNotSynced = errors.New("ROLE says the replica's link to its primary is not connected")
)

// PrimaryOptions adds to the options of a server of master what following
// Sentinel needs: the ROLE check of a primary, and a question to the
// Sentinels on a failed connection or a -READONLY reply (a primary turned
// replica under the proxy), in case a switch was missed.
func (f *Follower) PrimaryOptions(opt *pools.Options, master string) {
	opt.Handshake, opt.Verify = withRole(opt.Handshake), verifyPrimary
	opt.OnFailure = func(error) { f.requery(master) }
	opt.Demoted = readonlyReply
	opt.OnDemoted = func() { f.requery(master) }
}

// verifyPrimary checks a connection's reply to ROLE: only a primary gets
// the pool's traffic.
func verifyPrimary(reply []byte) error {
	if bytes.HasPrefix(reply, rolePrimary) {
		return nil
	}
	if len(reply) == 0 || reply[0] != '*' {
		return errRoleNotArray
	}
	return errNotAPrimary
}

// withRole returns a copy of handshake frames with ROLE last.
func withRole(handshake [][]byte) [][]byte {
	return append(append([][]byte(nil), handshake...), roleCommand)
}

// verifyReplica checks a connection's reply to ROLE: only a replica whose
// link to its primary is connected (so done loading, and replicating)
// gets reads.
func verifyReplica(reply []byte) error {
	count, off, err := resp.ReadArrayHeader(reply)
	if err != nil || count < 4 {
		return fmt.Errorf("%w: %q", errRoleNotArray, resp.Clip(reply))
	}
	var fields [4][]byte
	for i := range fields {
		if i == 2 { // the primary's port, an integer
			_, n, err := resp.ReadInteger(reply[off:])
			if err != nil || n == 0 {
				return fmt.Errorf("%w: %q", errRoleNotArray, resp.Clip(reply))
			}
			off += n
			continue
		}
		v, n, err := resp.ReadBulkString(reply[off:])
		if err != nil || n == 0 {
			if i == 0 {
				return errNotAReplica // a primary's second field is an integer
			}
			return fmt.Errorf("%w: %q", errRoleNotArray, resp.Clip(reply))
		}
		fields[i], off = v, off+n
		if i == 0 && !bytes.Equal(v, roleReplica) {
			return errNotAReplica
		}
	}
	if !bytes.Equal(fields[3], roleLinkUp) {
		return fmt.Errorf("%w (%s)", errReplicaNotSynced, fields[3])
	}
	return nil
}
