package proxy

import "github.com/shardproxy/shardproxy/pools"

// protocol is the whole contract between a client protocol (RESP,
// memcache) and the rest of the proxy.
type protocol interface {
	// parse reads the first request in b and records its slot(s) in bt,
	// enqueuing calls on servers as it goes. n == 0 means more bytes are
	// needed. quit asks to close the client once the batch's replies are
	// written (QUIT, or a stream that cannot be read any further, in which
	// case an error reply is already recorded).
	parse(cl *client, b []byte, bt *batch) (n int, quit bool)
	// reply appends the reply of slot s, whose calls are all done.
	reply(dst []byte, bt *batch, s *slot) []byte
	// refuse appends the reply sent to a client turned away because the
	// pool has client_connections clients already.
	refuse(dst []byte) []byte
	// tooLarge appends the reply to a request over the size limit.
	tooLarge(dst []byte) []byte
	// framer finds the end of server replies; isError tells an error reply;
	// handshake and ping are sent on new server connections and as a health
	// check.
	framer() pools.Framer
	// replyNeed and requestNeed tell, from the start of an incomplete reply
	// or request, how many bytes it needs in all (0: unknown), so buffers
	// grow once for a large value.
	replyNeed(b []byte) int
	requestNeed(b []byte) int
	// direct returns the reply of slot s when it can be written as it is
	// (one call, no error, no merge), or nil.
	direct(bt *batch, s *slot) []byte
	isError(reply []byte) bool
	handshake() [][]byte
	ping() []byte
}
