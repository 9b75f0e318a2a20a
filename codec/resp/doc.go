// Package resp frames the Redis serialization protocol (RESP) for the proxy's
// hot path.
//
// Everything here is a function over byte slices, in the style of
// strconv.AppendInt: readers take the bytes received so far and tell how long
// the first complete frame is, and Append* encoders append to a caller's
// buffer. Readers distinguish "need more bytes" (n == 0 and a nil error) from
// "malformed" (a non-nil *Error); they never read beyond the slice they are
// given, never allocate in proportion to a length the input claims, and do
// not allocate at all in the steady state.
//
// Requests (client to proxy) are read by ReadRequest, in both forms Redis
// accepts: multibulk ("*N\r\n" followed by N bulk strings) and inline (one
// line split on blanks with Redis's quoting rules). Replies (server to proxy)
// are framed by ReadReply, which knows every RESP2 and RESP3 type, RESP3's
// streamed strings and aggregates included, and nests iteratively up to a
// fixed depth. The proxy forwards the raw bytes of each frame unchanged;
// only inline requests are re-encoded, with AppendCommand. The replies the
// proxy writes itself are encoded with the Append* functions: the RESP2
// ones, and AppendMap, AppendSet, AppendPush, AppendNull3, AppendBool,
// AppendDouble, AppendBigNumber and AppendVerbatim for RESP3 clients.
//
// Code off the hot path that needs a reply's contents (the Sentinel
// client, the reshard command, the migration's SCANs, test helpers)
// decodes it once framed: ParseValue turns a framed reply into a Value
// (allocating in proportion to the reply's length, not to what it
// claims), ParseScan reads a SCAN reply, and a Reader reads values from a
// connection with a bound on each reply's size.
package resp
