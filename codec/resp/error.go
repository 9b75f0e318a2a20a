package resp

// Error reports malformed input: the stream cannot be framed past this point.
// For requests, Msg is the text Redis itself puts after "-ERR " for the same
// input, so the proxy can answer the client as Redis would, with
// AppendError(dst, "ERR "+err.Msg), before it closes the connection.
type Error struct {
	Msg string
}

// Error returns Msg.
func (e *Error) Error() string { return e.Msg }

// Messages of request errors; the first five are Redis's own wording.
const (
	msgInvalidMultibulk = "Protocol error: invalid multibulk length"
	msgInvalidBulk      = "Protocol error: invalid bulk length"
	msgTooBigInline     = "Protocol error: too big inline request"
	msgUnbalanced       = "Protocol error: unbalanced quotes in request"
	msgExpectedDollar   = "Protocol error: expected '$', got '"
	msgBulkTerminator   = "Protocol error: expected CRLF after bulk data"
)

// Messages of reply errors (Redis has no wording for these: it never reads
// replies).
const (
	msgUnknownType     = "Protocol error: unknown reply type '"
	msgInvalidLength   = "Protocol error: invalid length in reply"
	msgInvalidInteger  = "Protocol error: invalid integer reply"
	msgInvalidLine     = "Protocol error: invalid line in reply"
	msgReplyTooDeep    = "Protocol error: reply nesting too deep"
	msgExpectedArray   = "Protocol error: expected '*', got '"
	msgExpectedInteger = "Protocol error: expected ':', got '"
	msgExpectedChunk   = "Protocol error: expected ';', got '"
	msgUnexpectedEnd   = "Protocol error: unexpected end of a streamed aggregate"
	msgStreamedString  = "Protocol error: streamed string where a bulk string was expected"
)

// protoError returns a new *Error with message msg.
func protoError(msg string) error { return &Error{Msg: msg} }

// gotError returns a new *Error with message prefix + c + "'", as Redis
// formats "expected '$', got 'x'".
func gotError(prefix string, c byte) error {
	return &Error{Msg: prefix + string([]byte{c}) + "'"}
}

// Clip shortens a client- or server-supplied string for an error message
// to 128 bytes and turns CR and LF into spaces, as Redis does; other
// bytes are kept.
func Clip(b []byte) string {
	if len(b) > 128 {
		b = b[:128]
	}
	out := []byte(string(b))
	for i, c := range out {
		if c == '\r' || c == '\n' {
			out[i] = ' '
		}
	}
	return string(out)
}
