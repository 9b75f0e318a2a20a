package resp

import (
	"math"
	"strconv"

	"github.com/tidwall/redcon"
)

// AppendError appends the error reply "-msg\r\n" to dst. CR and LF in msg
// are replaced by spaces, so the reply stays one line.
func AppendError(dst []byte, msg string) []byte {
	return redcon.AppendError(dst, msg)
}

// AppendStatus appends the simple string reply "+s\r\n" to dst, such as
// "+OK\r\n". CR and LF in s are replaced by spaces.
func AppendStatus(dst []byte, s string) []byte {
	return redcon.AppendString(dst, s)
}

// AppendInt appends the integer reply ":v\r\n" to dst.
func AppendInt(dst []byte, v int64) []byte {
	return redcon.AppendInt(dst, v)
}

// AppendBulk appends b as a bulk string "$len\r\nb\r\n" to dst.
func AppendBulk(dst []byte, b []byte) []byte {
	return redcon.AppendBulk(dst, b)
}

// AppendBulkString appends s as a bulk string "$len\r\ns\r\n" to dst.
func AppendBulkString(dst []byte, s string) []byte {
	return redcon.AppendBulkString(dst, s)
}

// AppendNull appends the null bulk string "$-1\r\n" to dst.
func AppendNull(dst []byte) []byte {
	return redcon.AppendNull(dst)
}

// AppendArray appends the array header "*n\r\n" to dst; n elements must
// follow it.
func AppendArray(dst []byte, n int) []byte {
	return redcon.AppendArray(dst, n)
}

// AppendCommand appends a multibulk request frame of args to dst: how an
// inline request is re-encoded for a server, and how fragments of a
// multi-key command are built.
func AppendCommand(dst []byte, args ...[]byte) []byte {
	dst = redcon.AppendArray(dst, len(args))
	for _, a := range args {
		dst = redcon.AppendBulk(dst, a)
	}
	return dst
}

// The RESP3 encoders, for clients that said HELLO 3. A RESP2 client gets
// the RESP2 form of the same reply: AppendNull for AppendNull3, AppendArray
// for AppendMap (with the pairs flattened), AppendSet and AppendPush,
// AppendInt for AppendBool, a bulk string for AppendDouble,
// AppendBigNumber and AppendVerbatim.

// AppendNull3 appends the RESP3 null "_\r\n" to dst: Redis's answer to a
// RESP3 client where a RESP2 client gets the null bulk string (AppendNull)
// or the null array "*-1\r\n".
func AppendNull3(dst []byte) []byte {
	return append(dst, "_\r\n"...)
}

// AppendMap appends the map header "%n\r\n" to dst; n pairs must follow
// it, each a key and then its value (2n replies).
func AppendMap(dst []byte, n int) []byte {
	return appendHeader(dst, '%', n)
}

// AppendSet appends the set header "~n\r\n" to dst; n elements must
// follow it.
func AppendSet(dst []byte, n int) []byte {
	return appendHeader(dst, '~', n)
}

// AppendPush appends the push header ">n\r\n" to dst; n elements must
// follow it, the first the kind of push, such as "message".
func AppendPush(dst []byte, n int) []byte {
	return appendHeader(dst, '>', n)
}

// appendHeader appends "<typ>n\r\n" to dst.
func appendHeader(dst []byte, typ byte, n int) []byte {
	dst = strconv.AppendInt(append(dst, typ), int64(n), 10)
	return append(dst, '\r', '\n')
}

// AppendBool appends the boolean "#t\r\n" or "#f\r\n" to dst.
func AppendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, "#t\r\n"...)
	}
	return append(dst, "#f\r\n"...)
}

// AppendDouble appends the double ",<f>\r\n" to dst, f written as Redis
// 7.0 writes it: "inf", "-inf" and "nan", and otherwise as C's "%.17g"
// (17 significant digits without trailing zeros, in exponent form from
// 1e17 up and below 1e-4), so 1.5 is ",1.5\r\n" and 0.1 is
// ",0.10000000000000001\r\n".
func AppendDouble(dst []byte, f float64) []byte {
	dst = append(dst, ',')
	switch {
	case math.IsInf(f, 1):
		dst = append(dst, "inf"...)
	case math.IsInf(f, -1):
		dst = append(dst, "-inf"...)
	case math.IsNaN(f):
		dst = append(dst, "nan"...)
	default:
		dst = strconv.AppendFloat(dst, f, 'g', 17, 64)
	}
	return append(dst, '\r', '\n')
}

// AppendBigNumber appends the big number "(<digits>\r\n" to dst, digits
// being an integer of any size in decimal, such as
// "123456789012345678901234567890". CR and LF in digits are replaced by
// spaces, so the reply stays one line.
func AppendBigNumber(dst []byte, digits string) []byte {
	return append(appendLine(append(dst, '('), digits), '\r', '\n')
}

// appendLine appends s to dst with CR and LF replaced by spaces.
func appendLine(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		dst = append(dst, c)
	}
	return dst
}

// AppendVerbatim appends the verbatim string "=<len>\r\n<format>:<payload>\r\n"
// to dst, format being three bytes: "txt" for plain text, "mkd" for
// markdown. Redis answers INFO and CLIENT LIST, for example, with a
// verbatim "txt" string to a RESP3 client (a bulk string to a RESP2 one).
func AppendVerbatim(dst []byte, format string, payload []byte) []byte {
	dst = strconv.AppendInt(append(dst, '='), int64(len(format)+1+len(payload)), 10)
	dst = append(append(append(dst, '\r', '\n'), format...), ':')
	return append(append(dst, payload...), '\r', '\n')
}
