package proxy

import (
	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/pools"
)

// The contract between a protocol (RESP, memcache) and the rest of the
// proxy is two small interfaces: what serving clients needs, and what
// talking to the servers needs.

// clientProtocol frames clients' requests and writes their replies.
type clientProtocol interface {
	// parse reads the first request in b and records its answer(s) in
	// bt, enqueuing calls on servers as it goes. n == 0 means more bytes
	// are needed. quit asks to close the client once the batch's replies
	// are written (QUIT, or a stream that cannot be read any further, in
	// which case an error reply is already recorded).
	parse(cl *client, b []byte, bt *batch) (n int, quit bool)
	// reply appends the reply of answer s, whose calls are all done.
	reply(dst []byte, bt *batch, s *answer) []byte
	// direct returns the reply of answer s when it can be written as it
	// is (one call, no error, no merge), or nil.
	direct(bt *batch, s *answer) []byte
	// requestNeed tells, from the start of an incomplete request, how
	// many bytes it needs in all (0: unknown), so a buffer grows once
	// for a large value.
	requestNeed(b []byte) int
	// refuse appends the reply sent to a client turned away because the
	// pool has client_connections clients already.
	refuse(dst []byte) []byte
	// tooLarge appends the reply to a request over the size limit.
	tooLarge(dst []byte) []byte
}

// serverProtocol frames servers' replies and sets up server connections.
type serverProtocol interface {
	// framer finds the end of a server reply.
	framer() pools.Framer
	// replyNeed tells, from the start of an incomplete reply, how many
	// bytes it needs in all (0: unknown).
	replyNeed(b []byte) int
	// isError tells an error reply (a failed health check).
	isError(reply []byte) bool
	// handshake is sent on every new server connection of a pool with
	// this configuration (AUTH, SELECT); ping is the health check.
	handshake(cfg *config.Pool) [][]byte
	ping() []byte
	// hello3 is what a server connection that carries RESP3 clients says
	// after the handshake (nil: the protocol has no RESP3); isPush tells
	// a reply that answers no request.
	hello3() []byte
	isPush(reply []byte) bool
}
