package resp

import "github.com/tidwall/redcon"

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
