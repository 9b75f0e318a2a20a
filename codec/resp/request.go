package resp

import "math"

// Default limits: a multibulk request may have up to 1M arguments (Redis 7
// accepts up to INT_MAX), a bulk up to Redis's default proto-max-bulk-len.
const (
	DefaultMaxArgs = 1 << 20
	DefaultMaxBulk = 512 << 20
)

// Limits bound what a request may claim, so a hostile length never makes the
// proxy allocate it. A zero (or negative) field means its default.
type Limits struct {
	MaxArgs int // most arguments in one multibulk request; default DefaultMaxArgs
	MaxBulk int // longest bulk string in a request; default DefaultMaxBulk
}

// withDefaults returns l with zero fields replaced by the defaults.
func (l Limits) withDefaults() Limits {
	if l.MaxArgs <= 0 {
		l.MaxArgs = DefaultMaxArgs
	}
	if l.MaxBulk <= 0 {
		l.MaxBulk = DefaultMaxBulk
	}
	l.MaxBulk = min(l.MaxBulk, math.MaxInt/2) // offsets plus a bulk never overflow
	return l
}

// Request is one parsed request. Args are slices into the input buffer (no
// copies), except the arguments of an inline request that had quotes: those
// are unescaped into a scratch area the Request owns. Either way they stay
// valid until the next ReadRequest with the same Request (and, for slices of
// the input, as long as the input buffer is not overwritten). Each argument's
// capacity ends where it does, so appending to one never clobbers another.
type Request struct {
	Args   [][]byte
	Inline bool // the request came in the inline form

	scratch []byte // unescaped inline arguments; reused across calls
}

// ReadRequest parses the first complete request in b into req, reusing the
// backing array of req.Args. It returns the length n of the request's frame
// in b: the caller forwards b[:n] (a multibulk frame) or re-encodes req.Args
// (an inline request) and continues at b[n:].
//
// n == 0 with a nil error means b holds no complete request yet. A non-nil
// error is an *Error whose Msg is what Redis replies to the same input (after
// "ERR "); the stream cannot be read further. The checks are a little
// stricter than Redis's and fail sooner: a length line too long to be a
// number is refused without waiting for its end, a bulk must be followed by
// CRLF (Redis skips those two bytes unchecked), and MaxArgs defaults lower
// than Redis's INT_MAX. An inline line ends its arguments at a NUL byte, as
// sdssplitargs does (Redis itself never finds the end of such a line).
//
// "*0\r\n", any negative count (as in Redis), and an empty inline line are
// empty requests: n > 0 and no arguments, to be skipped.
func ReadRequest(b []byte, req *Request, lim Limits) (n int, err error) {
	req.Args = req.Args[:0]
	req.Inline = false
	if len(b) == 0 {
		return 0, nil
	}
	if b[0] != '*' {
		req.Inline = true
		n, err = readInline(b, req)
	} else {
		n, _, err = readMultibulk(b, req, lim.withDefaults())
	}
	if n == 0 {
		req.Args = req.Args[:0]
	}
	return n, err
}

// Need tells, after ReadRequest returned n == 0 and no error for b, how many
// bytes the incomplete request needs at least in total (counted from b[0]),
// when that is known: while a bulk's payload is arriving, it is the offset
// of that bulk's end. The caller can then grow its buffer once instead of
// doubling it many times. Need returns 0 when no such bound is known.
// Lengths are checked against the default limits.
func Need(b []byte) int {
	if len(b) == 0 || b[0] != '*' {
		return 0
	}
	n, need, err := readMultibulk(b, nil, Limits{}.withDefaults())
	if n != 0 || err != nil {
		return 0
	}
	return need
}

// readMultibulk reads the multibulk request at the start of b (b[0] is '*').
// If req is not nil, the arguments are appended to req.Args. When the frame
// is incomplete (n == 0, no error), need is the total length b must reach to
// complete the bulk being received, or 0 when not known.
func readMultibulk(b []byte, req *Request, lim Limits) (n, need int, err error) {
	count, pos, ok := readNumberLine(b)
	if !ok {
		return 0, 0, protoError(msgInvalidMultibulk)
	}
	if pos == 0 {
		return 0, 0, nil
	}
	if count <= 0 {
		return pos, 0, nil
	}
	if count > int64(lim.MaxArgs) {
		return 0, 0, protoError(msgInvalidMultibulk)
	}
	for i := int64(0); i < count; i++ {
		if pos == len(b) {
			return 0, 0, nil
		}
		if b[pos] != '$' {
			return 0, 0, gotError(msgExpectedDollar, b[pos])
		}
		size, m, ok := readNumberLine(b[pos:])
		if !ok || size < 0 || size > int64(lim.MaxBulk) {
			return 0, 0, protoError(msgInvalidBulk)
		}
		if m == 0 {
			return 0, 0, nil
		}
		start := pos + m
		if size > int64(len(b)-start-2) {
			return 0, start + int(size) + 2, nil
		}
		end := start + int(size)
		if b[end] != '\r' || b[end+1] != '\n' {
			return 0, 0, protoError(msgBulkTerminator)
		}
		if req != nil {
			req.Args = append(req.Args, b[start:end:end])
		}
		pos = end + 2
	}
	return pos, 0, nil
}
