// Package memcache frames the memcached text protocol (classic and meta
// commands) for the proxy's hot path.
//
// Everything here is a function over byte slices, in the style of
// strconv.AppendInt, with the same shapes and file names as package resp:
// readers take the bytes received so far and tell how long the first complete
// frame is, and Append* encoders append to a caller's buffer. Readers keep
// "need more bytes" (n == 0 and a nil error) apart from "malformed" (a non-nil
// error); they never read beyond the slice they are given, never allocate in
// proportion to a length the input claims, and do not allocate at all in the
// steady state.
//
// ReadRequest parses one client request the way memcached 1.6 does: a line
// ended by "\n" (an "\r" before it is dropped), split on spaces, and for
// storage commands (set, add, replace, append, prepend, cas, ms) a data block
// of the announced length followed by "\r\n". Whatever memcached would reject
// is reported as an *Error that carries memcached's own reply and tells the
// caller how to resynchronise the stream exactly as memcached does, so a
// request the proxy forwards always makes the server answer exactly once.
// The proxy forwards the raw frame bytes unchanged, or splits a multi-key get
// with AppendRetrieval and merges the servers' VALUE blocks (ReadValue) with
// a single AppendEnd.
//
// ReadReply frames a server's reply to a request of a given Command: VALUE
// blocks up to END for retrievals, STAT lines up to END for stats, a VA header
// and its data for meta commands, one line for everything else.
//
// Where the proxy deliberately differs from memcached (bounded get lines and
// key counts, closing on any over-long line whatever the TCP segmentation,
// commands it does not model) the documentation of ReadRequest and Limits
// says so.
package memcache
