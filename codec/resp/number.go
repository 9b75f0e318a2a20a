package resp

import "bytes"

// maxNumLen is the longest decimal number accepted in a length, a count or an
// integer reply. Redis's string2ll refuses 21 characters and more, and
// "-9223372036854775808" has 20.
const maxNumLen = 20

// parseInt parses p as Redis's string2ll does: an optional '-', then digits
// without leading zeros ("0" alone excepted, "-0" refused), no '+', no
// blanks, and a value that fits an int64.
func parseInt(p []byte) (int64, bool) {
	if len(p) == 0 || len(p) > maxNumLen {
		return 0, false
	}
	if len(p) == 1 && p[0] == '0' {
		return 0, true
	}
	neg := p[0] == '-'
	if neg {
		p = p[1:]
	}
	if len(p) == 0 || p[0] < '1' || p[0] > '9' {
		return 0, false
	}
	var v uint64
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return int64(-v), true
	}
	if v > 1<<63-1 {
		return 0, false
	}
	return int64(v), true
}

// readNumberLine parses a line "<type byte><integer>\r\n" at the start of b;
// the type byte is the caller's to check. n is the length of the line with
// its CRLF; n == 0 with ok means more bytes are needed, !ok means the line is
// not a valid integer (too long, not digits, or CR not followed by LF).
// It decides as soon as a prefix of b settles the answer, so a long line of
// garbage is refused without waiting for its end.
func readNumberLine(b []byte) (v int64, n int, ok bool) {
	if v, n := readShortNumberLine(b); n > 0 {
		return v, n, true
	}
	return readAnyNumberLine(b)
}

// readAnyNumberLine is readNumberLine for any b.
func readAnyNumberLine(b []byte) (v int64, n int, ok bool) {
	end := min(len(b), 1+maxNumLen+1)
	if end <= 1 {
		return 0, 0, true
	}
	cr := bytes.IndexByte(b[1:end], '\r')
	if cr < 0 {
		if end == 1+maxNumLen+1 {
			return 0, 0, false // 21 characters without CR: no valid number
		}
		return 0, 0, true
	}
	cr++
	if cr+1 >= len(b) {
		return 0, 0, true
	}
	if b[cr+1] != '\n' {
		return 0, 0, false
	}
	v, ok = parseInt(b[1:cr])
	if !ok {
		return 0, 0, false
	}
	return v, cr + 2, true
}

// maxShortDigits is the most digits readShortNumberLine reads: any 18
// digits fit an int64.
const maxShortDigits = 18

// readShortNumberLine is readNumberLine's fast path, for the lengths,
// counts and integers of nearly every reply and request: a complete line
// of a positive number of at most maxShortDigits digits, parsed in one
// pass. n == 0 means b is anything else, for readNumberLine to decide.
func readShortNumberLine(b []byte) (v int64, n int) {
	if len(b) < 4 || b[1] < '1' || b[1] > '9' {
		return 0, 0
	}
	u := uint64(b[1] - '0')
	i := 2
	for ; i < len(b) && i <= maxShortDigits && b[i] >= '0' && b[i] <= '9'; i++ {
		u = u*10 + uint64(b[i]-'0')
	}
	if i+1 >= len(b) || b[i] != '\r' || b[i+1] != '\n' {
		return 0, 0
	}
	return int64(u), i + 2
}
