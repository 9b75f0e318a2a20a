package resp

import "bytes"

// MaxInline is the longest inline request line, as Redis's
// PROTO_INLINE_MAX_SIZE: a longer line is refused.
const MaxInline = 64 * 1024

// readInline reads the inline request at the start of b: one line ending in
// "\n" (a "\r" before it is dropped), split into arguments as Redis's
// sdssplitargs does. As in Redis, whose parser works on C strings, a NUL
// byte ends the line's content.
func readInline(b []byte, req *Request) (int, error) {
	window := b[:min(len(b), MaxInline+1)]
	nl := bytes.IndexByte(window, '\n')
	if nl < 0 {
		if len(b) > MaxInline {
			return 0, protoError(msgTooBigInline)
		}
		return 0, nil
	}
	line := b[:nl]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	if i := bytes.IndexByte(line, 0); i >= 0 {
		line = line[:i]
	}
	if err := splitArgs(line, req); err != nil {
		return 0, err
	}
	return nl + 1, nil
}

// isSpace is C's isspace in the "C" locale: blanks skipped between arguments
// and allowed after a closing quote.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// endsArg reports whether c ends an unquoted argument (a narrower set than
// isSpace, as in sdssplitargs).
func endsArg(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// splitArgs appends the arguments of an inline line to req.Args. Arguments
// without quotes are slices of line; quoted ones are unescaped into
// req.scratch, which is sized to the line first so that it never moves while
// the line is split (unescaping never lengthens text).
func splitArgs(line []byte, req *Request) error {
	if bytes.IndexByte(line, '"') >= 0 || bytes.IndexByte(line, '\'') >= 0 {
		if cap(req.scratch) < len(line) {
			req.scratch = make([]byte, 0, len(line))
		}
		req.scratch = req.scratch[:0]
	}
	p := 0
	for {
		for p < len(line) && isSpace(line[p]) {
			p++
		}
		if p == len(line) {
			return nil
		}
		start := p
		for p < len(line) && !endsArg(line[p]) && line[p] != '"' && line[p] != '\'' {
			p++
		}
		if p == len(line) || endsArg(line[p]) {
			req.Args = append(req.Args, line[start:p:p])
			continue
		}
		s := len(req.scratch)
		req.scratch = append(req.scratch, line[start:p]...)
		next, err := unquoteArg(line, p, req)
		if err != nil {
			return err
		}
		e := len(req.scratch)
		req.Args = append(req.Args, req.scratch[s:e:e])
		p = next
	}
}

// unquoteArg continues an argument at line[p], which is a quote, appending
// its unescaped bytes to req.scratch. The closing quote ends the argument and
// must be followed by a blank or the end of the line. It returns the
// position after the closing quote.
func unquoteArg(line []byte, p int, req *Request) (int, error) {
	var err error
	if line[p] == '"' {
		p, err = unquoteDouble(line, p+1, req)
	} else {
		p, err = unquoteSingle(line, p+1, req)
	}
	if err != nil {
		return 0, err
	}
	if p < len(line) && !isSpace(line[p]) {
		return 0, protoError(msgUnbalanced)
	}
	return p, nil
}

// unquoteDouble unescapes a double-quoted part starting after its opening
// quote, and returns the position after the closing quote. Inside, \xHH is a
// byte in hex; \n \r \t \b \a stand for control characters; a backslash
// before any other character stands for that character.
func unquoteDouble(line []byte, p int, req *Request) (int, error) {
	for p < len(line) {
		c := line[p]
		switch {
		case c == '\\' && p+3 < len(line) && line[p+1] == 'x' && isHex(line[p+2]) && isHex(line[p+3]):
			req.scratch = append(req.scratch, unhex(line[p+2])<<4|unhex(line[p+3]))
			p += 4
		case c == '\\' && p+1 < len(line):
			req.scratch = append(req.scratch, unescape(line[p+1]))
			p += 2
		case c == '"':
			return p + 1, nil
		default:
			req.scratch = append(req.scratch, c)
			p++
		}
	}
	return 0, protoError(msgUnbalanced)
}

// unquoteSingle unescapes a single-quoted part starting after its opening
// quote, and returns the position after the closing quote. Inside, only \'
// is an escape.
func unquoteSingle(line []byte, p int, req *Request) (int, error) {
	for p < len(line) {
		c := line[p]
		switch {
		case c == '\\' && p+1 < len(line) && line[p+1] == '\'':
			req.scratch = append(req.scratch, '\'')
			p += 2
		case c == '\'':
			return p + 1, nil
		default:
			req.scratch = append(req.scratch, c)
			p++
		}
	}
	return 0, protoError(msgUnbalanced)
}

// unescape returns the byte a backslash escape stands for in double quotes.
func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'a':
		return '\a'
	}
	return c
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// unhex returns the value of a hex digit (isHex(c) is true).
func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
