package resp

import "errors"

// Kind is the type of a reply value: the type byte the reply starts with.
type Kind byte

// The kinds of reply values, RESP2 and RESP3. An attribute ('|') is not a
// kind of its own: it is kept in Value.Attrs of the reply it annotates.
const (
	KindSimple    Kind = '+' // simple string: Str
	KindError     Kind = '-' // simple error: Str, the text after '-'
	KindInteger   Kind = ':' // integer: Int
	KindBulk      Kind = '$' // bulk string: Str, or Null for "$-1"
	KindArray     Kind = '*' // array: Elems, or Null for "*-1"
	KindNull      Kind = '_' // RESP3 null: Null
	KindDouble    Kind = ',' // double: Str, its text as sent
	KindBoolean   Kind = '#' // boolean: Int, 1 for true and 0 for false
	KindBlobError Kind = '!' // blob error: Str
	KindVerbatim  Kind = '=' // verbatim string: Str, with its format prefix ("txt:")
	KindBigNumber Kind = '(' // big number: Str, its digits as sent
	KindMap       Kind = '%' // map: Elems, keys and values alternating
	KindSet       Kind = '~' // set: Elems
	KindPush      Kind = '>' // push: Elems
)

// Value is one decoded reply. An error reply is a Value of KindError or
// KindBlobError, not a Go error: the connection that carried it is still
// in step. Str and the Str of every element alias the bytes the value was
// parsed from, except a streamed string's, a copy of its chunks joined.
// A streamed array, set or map is decoded as a counted one would be.
type Value struct {
	Kind  Kind
	Null  bool    // "_", "$-1" or "*-1"
	Str   []byte  // the text or payload of a string (streamed or not), error, double or big number
	Int   int64   // an integer, or a boolean as 1 or 0
	Elems []Value // the elements of an array, set or push; a map's keys and values, alternating
	Attrs []Value // the attribute pairs ('|') that came before the reply, keys and values alternating
}

// ParseValue decodes the first complete reply of b, of any RESP2 or RESP3
// type, and returns it with its length n, which is always what ReadReply
// returns for b. n == 0 with a nil error means the reply is incomplete; an
// error (an *Error) means b does not start with a valid reply.
//
// It frames the reply with ReadReply first, so nesting is bounded by
// MaxReplyDepth and every allocation by the length of the framed reply,
// never by a length or count the input merely claims.
func ParseValue(b []byte) (v Value, n int, err error) {
	n, err = ReadReply(b)
	if err != nil || n == 0 {
		return Value{}, 0, err
	}
	v, _ = parseValue(b[:n])
	return v, n, nil
}

// parseValue decodes the reply b starts with, which ReadReply has framed
// and checked, and returns it with its length.
func parseValue(b []byte) (Value, int) {
	v := Value{Kind: Kind(b[0])}
	switch v.Kind {
	case KindSimple, KindError, KindDouble, KindBigNumber:
		m, _ := readLine(b)
		v.Str = b[1 : m-2]
		return v, m
	case KindInteger:
		n, m, _ := readNumberLine(b)
		v.Int = n
		return v, m
	case KindNull:
		v.Null = true
		return v, 3
	case KindBoolean:
		if b[1] == 't' {
			v.Int = 1
		}
		return v, 4
	case KindBulk, KindBlobError, KindVerbatim:
		return parseBulk(v, b)
	case '|':
		return parseAttribute(b)
	}
	return parseAggregate(v, b)
}

// parseBulk decodes into v the length-prefixed reply b starts with, a
// streamed string included.
func parseBulk(v Value, b []byte) (Value, int) {
	if b[1] == '?' {
		str, m := parseStreamedString(b)
		v.Str = str
		return v, m
	}
	size, m, _ := readNumberLine(b)
	if size < 0 {
		v.Null = true
		return v, m
	}
	v.Str = b[m : m+int(size)]
	return v, m + int(size) + 2
}

// parseAggregate decodes into v the array, map, set or push b starts
// with, counted or streamed.
func parseAggregate(v Value, b []byte) (Value, int) {
	if b[1] == '?' {
		elems, m := parseStreamedElems(b)
		v.Elems = elems
		return v, m
	}
	count, m, _ := readNumberLine(b)
	if count < 0 {
		v.Null = true
		return v, m
	}
	if v.Kind == KindMap {
		count *= 2
	}
	v.Elems, m = parseElems(b, m, int(count))
	return v, m
}

// parseStreamedString decodes a streamed string, which ReadReply has
// framed and checked, into the concatenation of its chunks, and returns
// it with the streamed string's length.
func parseStreamedString(b []byte) ([]byte, int) {
	n, _ := readStreamedString(b)
	str := make([]byte, 0, n)
	for pos := len("$?\r\n"); ; {
		size, m, _ := readNumberLine(b[pos:])
		pos += m
		if size == 0 {
			return str, pos
		}
		str = append(str, b[pos:pos+int(size)]...)
		pos += int(size) + 2
	}
}

// parseStreamedElems decodes the elements of a streamed aggregate, which
// ReadReply has framed and checked, and returns them with the position
// after its end ".\r\n".
func parseStreamedElems(b []byte) ([]Value, int) {
	elems := []Value{}
	pos := len("*?\r\n")
	for b[pos] != '.' {
		e, m := parseValue(b[pos:])
		elems = append(elems, e)
		pos += m
	}
	return elems, pos + len(".\r\n")
}

// parseElems decodes count replies from b[pos:] and returns them with the
// position after the last. Each takes at least 3 bytes of the framed
// reply, so the slice is bounded by the input's length.
func parseElems(b []byte, pos, count int) ([]Value, int) {
	if count == 0 {
		return []Value{}, pos
	}
	elems := make([]Value, count)
	for i := range elems {
		var m int
		elems[i], m = parseValue(b[pos:])
		pos += m
	}
	return elems, pos
}

// parseAttribute decodes an attribute and the reply it annotates: the
// reply, with the attribute's pairs in Attrs (before those of any further
// attribute of the same reply).
func parseAttribute(b []byte) (Value, int) {
	pairs, m, _ := readNumberLine(b)
	attrs, pos := parseElems(b, m, int(pairs)*2)
	v, m := parseValue(b[pos:])
	v.Attrs = append(attrs, v.Attrs...)
	return v, pos + m
}

// IsError reports whether v is an error reply: a simple error or a blob
// error, whose text is v.Str.
func (v Value) IsError() bool { return v.Kind == KindError || v.Kind == KindBlobError }

// Bulk returns the payload of a bulk string; ok is false for the null bulk
// string and for any other reply.
func (v Value) Bulk() (payload []byte, ok bool) {
	if v.Kind != KindBulk || v.Null {
		return nil, false
	}
	return v.Str, true
}

// Integer returns the value of an integer reply; ok is false for any other
// reply.
func (v Value) Integer() (n int64, ok bool) {
	if v.Kind != KindInteger {
		return 0, false
	}
	return v.Int, true
}

// ErrNotScan is returned by ParseScan for a reply that is not the reply of
// a SCAN.
var ErrNotScan = errors.New("not a SCAN reply")

// ParseScan reads the reply to SCAN (or SSCAN, HSCAN, ZSCAN): an array of
// the next cursor, a bulk string, and an array of bulk strings, the keys.
// Both alias v; a null array of keys is none. An error reply, or any other
// shape, is ErrNotScan.
func ParseScan(v Value) (cursor []byte, keys [][]byte, err error) {
	if v.Kind != KindArray || len(v.Elems) != 2 {
		return nil, nil, ErrNotScan
	}
	cursor, ok := v.Elems[0].Bulk()
	list := v.Elems[1]
	if !ok || list.Kind != KindArray {
		return nil, nil, ErrNotScan
	}
	keys = make([][]byte, len(list.Elems))
	for i, e := range list.Elems {
		if keys[i], ok = e.Bulk(); !ok {
			return nil, nil, ErrNotScan
		}
	}
	return cursor, keys, nil
}
