package memcache

import "math"

// memcached reads numbers with C's strtol/strtoull family (through its safe_*
// wrappers, on a 64-bit machine). Which requests it accepts, and so where the
// stream goes on, depends on their quirks, which these functions copy: leading
// white space and a sign are allowed, at least one decimal digit is needed,
// and the digits may be followed by white space (a tab, say) and anything
// else; out of range is an error, and a minus sign before an unsigned number
// negates it modulo 2^64.

// isSpace reports whether c is white space in the C locale.
func isSpace(c byte) bool {
	return c == ' ' || (c >= '\t' && c <= '\r')
}

// cNumber splits tok the way strtoull reads it: the sign, the magnitude, and
// whether the token is acceptable to memcached at all (digits present, in
// range of 64 bits, followed by the end of the token or by white space).
func cNumber(tok []byte) (neg bool, mag uint64, ok bool) {
	i := 0
	for i < len(tok) && isSpace(tok[i]) {
		i++
	}
	if i < len(tok) && (tok[i] == '+' || tok[i] == '-') {
		neg = tok[i] == '-'
		i++
	}
	start, overflow := i, false
	for ; i < len(tok) && tok[i] >= '0' && tok[i] <= '9'; i++ {
		d := uint64(tok[i] - '0')
		if mag > (math.MaxUint64-d)/10 {
			overflow = true
		} else {
			mag = mag*10 + d
		}
	}
	if i == start || overflow || (i < len(tok) && !isSpace(tok[i])) {
		return false, 0, false
	}
	return neg, mag, true
}

// parseInt64 reads tok as memcached's safe_strtoll does (exptime arguments).
func parseInt64(tok []byte) (int64, bool) {
	neg, mag, ok := cNumber(tok)
	switch {
	case !ok:
		return 0, false
	case neg && mag <= 1<<63:
		return int64(-mag), true
	case !neg && mag <= math.MaxInt64:
		return int64(mag), true
	}
	return 0, false
}

// parseInt32 reads tok as memcached's safe_strtol does (data block lengths):
// a value above 2^31-1 is refused, one below -2^31 is silently truncated to
// 32 bits (so "-4294967293" reads as 3).
func parseInt32(tok []byte) (int32, bool) {
	v, ok := parseInt64(tok)
	if !ok || v > math.MaxInt32 {
		return 0, false
	}
	return int32(v), true
}

// parseUint64 reads tok as memcached's safe_strtoull does (cas unique, incr
// and decr deltas): a negated number is refused only when the result looks
// negative as a signed number.
func parseUint64(tok []byte) (uint64, bool) {
	neg, mag, ok := cNumber(tok)
	if !ok {
		return 0, false
	}
	v := mag
	if neg {
		v = -mag
	}
	if neg && int64(v) < 0 {
		return 0, false
	}
	return v, true
}

// parseUint32 reads tok as memcached's safe_strtoul does (client flags,
// verbosity level): like parseUint64, then truncated to 32 bits.
func parseUint32(tok []byte) (uint32, bool) {
	v, ok := parseUint64(tok)
	return uint32(v), ok
}
