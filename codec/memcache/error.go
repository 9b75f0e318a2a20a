package memcache

import "errors"

// Error reports a request memcached 1.6 would reject. It tells the proxy what
// to answer and how to find the next request, exactly as memcached does:
//
//   - unless NoReply is set, write Reply followed by "\r\n" to the client;
//   - discard the n bytes ReadRequest returned, and then Swallow more bytes
//     as they arrive (memcached swallows the data block of a storage request
//     whose value is too large without ever looking at it);
//   - if Close is set, close the connection instead of reading on.
type Error struct {
	// Reply is memcached's answer without its "\r\n", such as "ERROR" or
	// "CLIENT_ERROR bad data chunk"; it is never empty.
	Reply string
	// NoReply is set when memcached answers nothing: the request ended in
	// "noreply", or memcached closes the connection without a word.
	NoReply bool
	// Close is set when the stream cannot be read further: memcached closes
	// the connection.
	Close bool
	// Swallow is how many bytes after the request line are to be discarded;
	// they need not have arrived yet.
	Swallow int
}

// Error returns Reply.
func (e *Error) Error() string { return e.Reply }

// Replies memcached 1.6 gives to malformed requests, in its own wording, and
// the proxy's wording for its own limits.
const (
	replyError        = "ERROR"
	replyBadFormat    = "CLIENT_ERROR bad command line format"
	replyBadDelete    = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"
	replyBadChunk     = "CLIENT_ERROR bad data chunk"
	replyBadExptime   = "CLIENT_ERROR invalid exptime argument"
	replyBadDelta     = "CLIENT_ERROR invalid numeric delta argument"
	replyFlagsTooLong = "CLIENT_ERROR options flags too long"
	replyTooLarge     = "SERVER_ERROR object too large for cache"
	replyLineTooLong  = "CLIENT_ERROR line too long"
	replyTooManyKeys  = "CLIENT_ERROR too many keys"
)

// ErrProtocol is wrapped by every error ReadReply and ReadValue return: the
// server's reply cannot be framed, so the server connection must be reset.
var ErrProtocol = errors.New("memcache: malformed reply")

// reject returns a request error answered with reply (silently if noreply).
func reject(reply string, noreply bool) *Error {
	return &Error{Reply: reply, NoReply: noreply}
}
