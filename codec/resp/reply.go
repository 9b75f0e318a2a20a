package resp

import (
	"bytes"
	"math"
)

// MaxReplyDepth is how deeply aggregate replies (arrays, maps, sets, pushes,
// attributes) may nest; ReadReply refuses deeper nesting with an error.
const MaxReplyDepth = 1000

// maxAggregate bounds the element count a counted aggregate reply claims
// (a map's or an attribute's: its pairs).
const maxAggregate = math.MaxInt32

// ReadReply returns the length of the first complete reply in b, of any
// RESP2 or RESP3 type: simple string '+', error '-', integer ':', bulk '$',
// array '*', null '_', double ',', boolean '#', blob error '!', verbatim
// string '=', big number '(', map '%', set '~', push '>' and attribute '|'
// (an attribute is framed together with the reply it annotates). The
// streamed forms of RESP3 are framed whole: a streamed string "$?\r\n"
// with its chunks ";<len>\r\n<bytes>\r\n" up to the last ";0\r\n", and
// a streamed array, set or map ("*?\r\n", "~?\r\n", "%?\r\n") up to the
// end ".\r\n" of its elements (a map's keys and values, an even number).
// n == 0 with a nil error means the reply is incomplete; an error means b
// does not start with a valid reply.
//
// Aggregates are walked iteratively, with a fixed-size stack of pending
// element counts: nesting deeper than MaxReplyDepth is an error, never a
// stack overflow.
func ReadReply(b []byte) (n int, err error) {
	var pending [shallowDepth]uint64
	n, err = walkReply(b, pending[:])
	if err == errDeeper {
		return readDeepReply(b)
	}
	return n, err
}

// shallowDepth is the nesting ReadReply handles with a small stack; deeper
// replies are walked again by readDeepReply, so that the common case does
// not clear a large array on every call.
const shallowDepth = 16

// errDeeper tells that a reply nests deeper than the stack walkReply got.
var errDeeper = &Error{Msg: msgReplyTooDeep}

// readDeepReply frames a reply nesting deeper than shallowDepth.
func readDeepReply(b []byte) (int, error) {
	var pending [MaxReplyDepth]uint64
	n, err := walkReply(b, pending[:])
	if err == errDeeper {
		return 0, protoError(msgReplyTooDeep)
	}
	return n, err
}

// walkReply frames the first reply of b with pending as its stack of
// element counts still expected per open aggregate (see streamStart for
// a streamed one's); it returns errDeeper when the reply nests deeper than
// len(pending).
func walkReply(b []byte, pending []uint64) (int, error) {
	depth, pos := 0, 0
	for {
		m, children, err := readElement(b[pos:])
		if err != nil || m == 0 {
			return 0, err
		}
		pos += m
		if depth > 0 {
			pending[depth-1]--
		}
		if children != 0 {
			if children > 0 {
				if depth == len(pending) {
					return 0, errDeeper
				}
				pending[depth] = uint64(children)
				depth++
				continue
			}
			if depth, err = walkStream(pending, depth, children); err != nil {
				return 0, err
			}
		}
		for depth > 0 && pending[depth-1] == 0 {
			depth--
		}
		if depth == 0 {
			return pos, nil
		}
	}
}

// readElement reads one reply element at the start of b: a whole scalar, or
// the header of an aggregate, in which case children is how many elements
// follow (an attribute's pairs plus the reply it annotates), or
// streamedAggregate or streamedMap for a streamed one; the end of a
// streamed aggregate is children == endOfStream. m == 0 with a nil error
// means more bytes are needed.
func readElement(b []byte) (m int, children int64, err error) {
	if len(b) == 0 {
		return 0, 0, nil
	}
	switch b[0] {
	case '+', '-', ',', '(':
		m, err = readLine(b)
	case ':':
		m, err = readIntegerLine(b)
	case '_':
		m, err = readFixed(b, "_\r\n")
	case '#':
		m, err = readBoolean(b)
	case '$', '!', '=':
		m, err = readBulk(b)
	case '*', '%', '~', '>', '|':
		return readAggregate(b)
	default:
		return readEnd(b)
	}
	return m, 0, err
}

// readLine reads a line reply: text without CR or LF, then CRLF.
func readLine(b []byte) (int, error) {
	cr := bytes.IndexByte(b, '\r')
	if cr < 0 {
		if bytes.IndexByte(b, '\n') >= 0 {
			return 0, protoError(msgInvalidLine)
		}
		return 0, nil
	}
	if bytes.IndexByte(b[:cr], '\n') >= 0 {
		return 0, protoError(msgInvalidLine)
	}
	if cr+1 == len(b) {
		return 0, nil
	}
	if b[cr+1] != '\n' {
		return 0, protoError(msgInvalidLine)
	}
	return cr + 2, nil
}

// readIntegerLine reads ":<int64>\r\n".
func readIntegerLine(b []byte) (int, error) {
	_, m, ok := readNumberLine(b)
	if !ok {
		return 0, protoError(msgInvalidInteger)
	}
	return m, nil
}

// readFixed reads the exact text want (whose first byte b already has).
func readFixed(b []byte, want string) (int, error) {
	k := min(len(b), len(want))
	if string(b[:k]) != want[:k] {
		return 0, protoError(msgInvalidLine)
	}
	if k < len(want) {
		return 0, nil
	}
	return k, nil
}

// readBoolean reads "#t\r\n" or "#f\r\n".
func readBoolean(b []byte) (int, error) {
	if len(b) > 1 && b[1] == 'f' {
		return readFixed(b, "#f\r\n")
	}
	return readFixed(b, "#t\r\n")
}

// readBulk reads a length-prefixed reply ('$', '!' or '='): "$-1\r\n" is
// the RESP2 null bulk, "$?\r\n" starts a streamed string; otherwise the
// payload must be followed by CRLF.
func readBulk(b []byte) (int, error) {
	size, m, ok := readNumberLine(b)
	if !ok || size < -1 || size == -1 && b[0] != '$' {
		return readStreamedString(b)
	}
	if m == 0 {
		return 0, nil
	}
	if size == -1 {
		return m, nil
	}
	return readPayload(b, m, size)
}

// readPayload reads the size bytes at b[m:] and the CRLF after them, and
// returns the length up to that CRLF.
func readPayload(b []byte, m int, size int64) (int, error) {
	if size > int64(len(b)-m-2) {
		return 0, nil
	}
	end := m + int(size)
	if b[end] != '\r' || b[end+1] != '\n' {
		return 0, protoError(msgBulkTerminator)
	}
	return end + 2, nil
}

// readAggregate reads the header of an aggregate reply and returns how many
// elements follow it: "*-1\r\n" is the RESP2 null array (no elements); maps
// have two elements per entry; an attribute is followed by its pairs and by
// the reply it annotates; a streamed array, set or map ("*?\r\n", "~?\r\n",
// "%?\r\n") is followed by elements up to its end ".\r\n".
func readAggregate(b []byte) (int, int64, error) {
	count, m, ok := readNumberLine(b)
	if !ok || count < -1 || count == -1 && b[0] != '*' || count > maxAggregate {
		return readStreamedAggregate(b)
	}
	if m == 0 || count <= 0 && b[0] != '|' {
		return m, 0, nil
	}
	switch b[0] {
	case '%':
		count *= 2
	case '|':
		count = count*2 + 1
	}
	return m, count, nil
}

// ReadArrayHeader parses an array header "*N\r\n" at the start of b and
// returns the element count (-1 for the null array "*-1\r\n") and the
// header's length n; n == 0 with a nil error means more bytes are needed.
// The proxy uses it to merge the array replies of MGET fragments.
func ReadArrayHeader(b []byte) (count int, n int, err error) {
	if len(b) == 0 {
		return 0, 0, nil
	}
	if b[0] != '*' {
		return 0, 0, gotError(msgExpectedArray, b[0])
	}
	c, m, ok := readNumberLine(b)
	if !ok || c < -1 || c > maxAggregate {
		return 0, 0, protoError(msgInvalidLength)
	}
	return int(c), m, nil
}

// ReadInteger parses an integer reply ":N\r\n" at the start of b and returns
// its value and length n; n == 0 with a nil error means more bytes are
// needed. The proxy uses it to sum the replies of DEL or EXISTS fragments.
func ReadInteger(b []byte) (v int64, n int, err error) {
	if len(b) == 0 {
		return 0, 0, nil
	}
	if b[0] != ':' {
		return 0, 0, gotError(msgExpectedInteger, b[0])
	}
	v, n, ok := readNumberLine(b)
	if !ok {
		return 0, 0, protoError(msgInvalidInteger)
	}
	return v, n, nil
}

// ReadBulkString parses a bulk string reply "$N\r\n<payload>\r\n" at the
// start of b and returns its payload (aliasing b; nil for the null bulk
// "$-1\r\n") and its length n; n == 0 with a nil error means more bytes
// are needed. A streamed string, whose payload is in pieces, is an error
// here (ParseValue decodes it). The proxy uses it to read the fields of a
// replica's ROLE.
func ReadBulkString(b []byte) (val []byte, n int, err error) {
	if len(b) == 0 {
		return nil, 0, nil
	}
	if b[0] != '$' {
		return nil, 0, gotError(msgExpectedDollar, b[0])
	}
	if len(b) > 1 && b[1] == '?' {
		return nil, 0, protoError(msgStreamedString)
	}
	n, err = readBulk(b)
	if n == 0 || err != nil {
		return nil, 0, err
	}
	_, m, _ := readNumberLine(b)
	if n == m {
		return nil, n, nil
	}
	return b[m : n-2], n, nil
}

// IsError reports whether a reply is an error reply: a simple error ('-')
// or a RESP3 blob error ('!').
func IsError(reply []byte) bool {
	return len(reply) > 0 && (reply[0] == '-' || reply[0] == '!')
}
