package resp

// RESP3's streamed forms, which ReadReply frames and ParseValue decodes: a
// string sent in chunks, "$?\r\n" then ";<len>\r\n<bytes>\r\n" ... and
// ";0\r\n", and an array, set or map of elements up to ".\r\n"
// ("*?\r\n", "~?\r\n", "%?\r\n"). Redis itself sends none of them today;
// modules and other servers may.

// The children readElement returns for the header of a streamed array or
// set, of a streamed map, and for the end ".\r\n" of either.
const (
	streamedAggregate = -2
	streamedMap       = -3
	endOfStream       = -1
)

// The stack entries a streamed array or set and a streamed map start at:
// in binary, 11 and 10 followed by ones. Like a count, an entry goes down
// by one at each element, but it starts far above any count (at most
// 2*maxAggregate+1) and never gets near zero: each element takes 3 bytes
// or more, so fewer than 1<<62 of them fit in a slice. So its top two bits
// keep telling which aggregate it is and, both starts being odd, its
// lowest bit whether the elements read so far pair up, as a map's must.
const (
	streamStart    = 1<<64 - 1
	streamMapStart = 1<<63 | (1<<62 - 1)
)

// walkStream opens (children streamedAggregate or streamedMap) or closes
// (endOfStream) a streamed aggregate on the stack pending of depth open
// aggregates, and returns the new depth. The end ".\r\n" has counted as
// an element of the aggregate it closes; walkStream takes that back.
func walkStream(pending []uint64, depth int, children int64) (int, error) {
	if children != endOfStream {
		if depth == len(pending) {
			return 0, errDeeper
		}
		pending[depth] = streamStart
		if children == streamedMap {
			pending[depth] = streamMapStart
		}
		return depth + 1, nil
	}
	if depth == 0 {
		return 0, protoError(msgUnexpectedEnd)
	}
	switch p := pending[depth-1] + 1; {
	case p>>62 == streamStart>>62: // an array or a set
	case p>>62 == streamMapStart>>62 && p&1 == 1: // a map, after a value
	default: // a counted aggregate, or a map after a key
		return 0, protoError(msgUnexpectedEnd)
	}
	return depth - 1, nil
}

// readEnd reads the end ".\r\n" of a streamed aggregate, with children
// endOfStream; any other type byte is an error.
func readEnd(b []byte) (int, int64, error) {
	if b[0] != '.' {
		return 0, 0, gotError(msgUnknownType, b[0])
	}
	m, err := readFixed(b, ".\r\n")
	return m, endOfStream, err
}

// isStreamHeader reports whether b starts with the header "<typ>?\r\n" of a
// streamed string or aggregate.
func isStreamHeader(b []byte, typ byte) bool {
	return len(b) >= 4 && b[0] == typ && b[1] == '?' && b[2] == '\r' && b[3] == '\n'
}

// readStreamedString reads a streamed string, "$?\r\n" and then chunks
// ";<len>\r\n<bytes>\r\n", up to and with the last chunk ";0\r\n"; any
// other header readBulk refuses is an error.
func readStreamedString(b []byte) (int, error) {
	if !isStreamHeader(b, '$') {
		return 0, protoError(msgInvalidLength)
	}
	for pos := len("$?\r\n"); ; {
		if pos == len(b) {
			return 0, nil
		}
		if b[pos] != ';' {
			return 0, gotError(msgExpectedChunk, b[pos])
		}
		size, m, ok := readNumberLine(b[pos:])
		if !ok || size < 0 {
			return 0, protoError(msgInvalidLength)
		}
		if m == 0 {
			return 0, nil
		}
		if size == 0 {
			return pos + m, nil
		}
		n, err := readPayload(b[pos:], m, size)
		if n == 0 {
			return 0, err
		}
		pos += n
	}
}

// readStreamedAggregate reads the header of a streamed array, set or map,
// which readNumberLine refuses as a count; any other header it refuses is
// an error.
func readStreamedAggregate(b []byte) (int, int64, error) {
	if !isStreamHeader(b, b[0]) {
		return 0, 0, protoError(msgInvalidLength)
	}
	switch b[0] {
	case '*', '~':
		return len("*?\r\n"), streamedAggregate, nil
	case '%':
		return len("%?\r\n"), streamedMap, nil
	}
	return 0, 0, protoError(msgInvalidLength)
}
