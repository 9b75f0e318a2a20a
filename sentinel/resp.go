package sentinel

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Limits on what readReply accepts from a Sentinel, whose replies are
// small: a longer bulk string, a larger array or deeper nesting is a
// protocol error rather than memory spent on a broken or hostile peer.
const (
	maxBulk  = 1 << 24 // bytes of one bulk string
	maxArray = 1 << 20 // elements of one array
	maxDepth = 8       // nesting of arrays
)

// replyError is an error reply ("-ERR ...") from a Sentinel. It is a value
// of the reply, not a failure of the connection, which stays usable.
type replyError string

func (e replyError) Error() string { return string(e) }

// errProtocol marks a reply that is not valid RESP2; the connection is
// then out of step and must be closed.
var errProtocol = errors.New("sentinel: protocol error")

// readReply reads one RESP2 reply from r: a string for a simple or bulk
// string, int64 for an integer, nil for a null bulk string or array, []any
// for an array, and a replyError for an error reply. An error return is a
// read failure or malformed input (wrapping errProtocol); after it the
// connection is no longer in step.
func readReply(r *bufio.Reader) (any, error) {
	return readDepth(r, 0)
}

func readDepth(r *bufio.Reader, depth int) (any, error) {
	line, err := readLine(r)
	if err != nil {
		if depth > 0 {
			err = noEOF(err)
		}
		return nil, err
	}
	if line == "" {
		return nil, fmt.Errorf("%w: empty line", errProtocol)
	}
	body := line[1:]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return replyError(body), nil
	case ':':
		n, err := strconv.ParseInt(body, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: integer %q", errProtocol, body)
		}
		return n, nil
	case '$':
		n, err := readLength(body, maxBulk)
		if err != nil || n < 0 {
			return nil, err
		}
		return readBulk(r, n)
	case '*':
		n, err := readLength(body, maxArray)
		if err != nil || n < 0 {
			return nil, err
		}
		if depth == maxDepth {
			return nil, fmt.Errorf("%w: arrays nested deeper than %d", errProtocol, maxDepth)
		}
		// Grown as elements arrive, never sized by the claimed length alone.
		a := make([]any, 0, min(n, 16))
		for range n {
			v, err := readDepth(r, depth+1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		return a, nil
	}
	return nil, fmt.Errorf("%w: unknown reply type %q", errProtocol, line[0])
}

// readLine reads one line ending in CRLF and returns it without the CRLF.
func readLine(r *bufio.Reader) (string, error) {
	b, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", fmt.Errorf("%w: line longer than %d bytes", errProtocol, r.Size())
	}
	if err != nil {
		if len(b) > 0 {
			err = noEOF(err)
		}
		return "", err
	}
	if len(b) < 2 || b[len(b)-2] != '\r' {
		return "", fmt.Errorf("%w: line %q does not end in CRLF", errProtocol, b)
	}
	return string(b[:len(b)-2]), nil
}

// readLength parses the length of a bulk string or array: -1 for null, or
// 0 to limit.
func readLength(s string, limit int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < -1 || n > limit {
		return 0, fmt.Errorf("%w: length %q", errProtocol, s)
	}
	return n, nil
}

// readBulk reads the n bytes of a bulk string and its CRLF.
func readBulk(r *bufio.Reader, n int) (string, error) {
	var b strings.Builder
	if _, err := io.CopyN(&b, r, int64(n)); err != nil {
		return "", noEOF(err)
	}
	var crlf [2]byte
	if _, err := io.ReadFull(r, crlf[:]); err != nil {
		return "", noEOF(err)
	}
	if crlf != [2]byte{'\r', '\n'} {
		return "", fmt.Errorf("%w: bulk string of %d bytes not followed by CRLF", errProtocol, n)
	}
	return b.String(), nil
}

// noEOF turns an end of input inside a reply into io.ErrUnexpectedEOF;
// io.EOF is left for a connection closed between replies.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
