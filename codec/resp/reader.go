package resp

import (
	"errors"
	"io"
)

// Reader reads replies one at a time from a stream, such as a connection
// to a server or a Sentinel, for code off the proxy's hot path. It frames
// each reply with ReadReply and decodes it with ParseValue, reading more
// bytes only while the reply is incomplete, and refuses a reply longer
// than its limit instead of buffering it.
//
// A Value it returns stays valid: the Reader never writes over bytes it
// has returned, and takes a new buffer when it needs room.
type Reader struct {
	rd    io.Reader
	max   int
	buf   []byte // buf[start:end] is read and not yet returned
	start int
	end   int
	err   error // the read error that came with the last bytes read
}

// minReadBuffer is the size of a Reader's first buffer.
const minReadBuffer = 4 << 10

// maxEmptyReads is how many reads returning nothing and no error a Reader
// tolerates in a row, as bufio does.
const maxEmptyReads = 100

// msgReplyTooLarge is the *Error of a reply longer than a Reader's limit.
const msgReplyTooLarge = "Protocol error: reply too large"

// NewReader returns a Reader of replies from rd, each at most maxSize bytes
// long (MaxReplyDepth bounds their nesting).
func NewReader(rd io.Reader, maxSize int) *Reader {
	return &Reader{rd: rd, max: max(maxSize, 1)}
}

// ReadValue reads the next reply. An error reply is a Value, not an error.
// The error is io.EOF when the stream ends between replies,
// io.ErrUnexpectedEOF when it ends inside one, an *Error for malformed
// input or a reply longer than the limit (the stream is then out of step),
// or the stream's read error.
func (r *Reader) ReadValue() (Value, error) {
	for {
		b := r.buf[r.start:r.end]
		n, err := ReadReply(b)
		if err != nil {
			return Value{}, err
		}
		if n > 0 {
			r.start += n
			v, _ := parseValue(b[:n])
			return v, nil
		}
		if len(b) >= r.max || claimsMore(b, r.max) {
			return Value{}, protoError(msgReplyTooLarge)
		}
		if err := r.fill(); err != nil {
			return Value{}, err
		}
	}
}

// claimsMore reports whether b starts with the header of a bulk reply
// longer than limit: refused at once, not after limit bytes have arrived.
func claimsMore(b []byte, limit int) bool {
	if len(b) == 0 || b[0] != '$' && b[0] != '!' && b[0] != '=' {
		return false
	}
	size, m, ok := readNumberLine(b)
	return ok && m > 0 && size > int64(limit-m-2)
}

// fill reads more bytes after those buffered, in a new buffer when the
// current one is full.
func (r *Reader) fill() error {
	if r.err != nil {
		err := r.err
		r.err = nil
		return r.eofInReply(err)
	}
	if r.end == len(r.buf) {
		unread := r.end - r.start
		nb := make([]byte, min(max(minReadBuffer, 2*unread), r.max))
		copy(nb, r.buf[r.start:r.end])
		r.buf, r.start, r.end = nb, 0, unread
	}
	for range maxEmptyReads {
		n, err := r.rd.Read(r.buf[r.end:])
		r.end += n
		if n > 0 {
			r.err = err
			return nil
		}
		if err != nil {
			return r.eofInReply(err)
		}
	}
	return io.ErrNoProgress
}

// eofInReply turns io.EOF into io.ErrUnexpectedEOF when part of a reply is
// buffered.
func (r *Reader) eofInReply(err error) error {
	if errors.Is(err, io.EOF) && r.end > r.start {
		return io.ErrUnexpectedEOF
	}
	return err
}
