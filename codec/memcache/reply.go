package memcache

import (
	"bytes"
	"fmt"
	"math"
)

// maxReplyLine bounds a reply line the proxy waits for. memcached's longest
// lines (a VALUE line with a 250-byte key and a cas, a meta header with an
// opaque and a returned key) are a few hundred bytes.
const maxReplyLine = 8192

// ReadReply returns the length of the first complete reply in b to a request
// of kind cmd, or 0 and a nil error if it has not all arrived:
//
//   - get, gets, gat, gats: zero or more "VALUE <key> <flags> <bytes>
//     [<cas>]\r\n<data>\r\n" blocks and "END\r\n", or a single error line
//     ("ERROR", "CLIENT_ERROR ...", "SERVER_ERROR ...");
//   - stats: lines up to "END\r\n" (STAT, ITEM, PREFIX lines), or a single
//     "RESET", "OK" or error line;
//   - mg, ms, md, ma, mn: "VA <size> <flag>*\r\n<data>\r\n", or one line
//     (HD, EN, NF, NS, EX, MN, an error);
//   - everything else: one line.
//
// Requests with noreply, quit, and quiet meta requests may get no reply at
// all; the caller must not wait for one. Lines must end in "\r\n", as
// memcached always sends them. An error wraps ErrProtocol: the server's
// stream cannot be framed.
func ReadReply(b []byte, cmd Command) (n int, err error) {
	switch {
	case cmd.Retrieval():
		return readRetrievalReply(b)
	case cmd == CmdStats:
		return readStatsReply(b)
	case cmd.Meta():
		return readMetaReply(b)
	}
	n, _, err = replyLine(b)
	return n, err
}

// ReadValue parses the VALUE block at the start of b, as the proxy does when
// it merges the replies to the fragments of a split get: it returns the
// block's key and total length (header, data and "\r\n") with ok set. When b
// starts with "END\r\n", ok is false and n is 5. n == 0 with a nil error means
// the block has not all arrived. Anything else is an error wrapping
// ErrProtocol.
func ReadValue(b []byte) (key []byte, n int, ok bool, err error) {
	n, line, err := replyLine(b)
	if n == 0 || err != nil {
		return nil, 0, false, err
	}
	if string(line) == "END" {
		return nil, n, false, nil
	}
	key, end, err := valueBlock(b, n, line)
	if end == 0 || err != nil {
		return nil, 0, false, err
	}
	return key, end, true, nil
}

// replyLine returns the length of b's first line with its "\r\n", and the
// line without it; n == 0 if the line has not all arrived.
func replyLine(b []byte) (n int, line []byte, err error) {
	i := bytes.IndexByte(b[:min(len(b), maxReplyLine)], '\n')
	switch {
	case i < 0 && len(b) >= maxReplyLine:
		return 0, nil, fmt.Errorf("%w: line longer than %d bytes", ErrProtocol, maxReplyLine)
	case i < 0:
		return 0, nil, nil
	case i == 0 || b[i-1] != '\r':
		return 0, nil, fmt.Errorf("%w: line not ended by \\r\\n: %q", ErrProtocol, b[:i])
	}
	return i + 1, b[: i-1 : i-1], nil
}

// isErrorLine reports whether line is one of memcached's error replies.
func isErrorLine(line []byte) bool {
	return string(line) == "ERROR" || bytes.HasPrefix(line, []byte("CLIENT_ERROR")) ||
		bytes.HasPrefix(line, []byte("SERVER_ERROR"))
}

// readRetrievalReply frames VALUE blocks up to END, or one error line.
func readRetrievalReply(b []byte) (int, error) {
	for i := 0; ; {
		n, line, err := replyLine(b[i:])
		switch {
		case n == 0 || err != nil:
			return 0, err
		case string(line) == "END":
			return i + n, nil
		case i == 0 && isErrorLine(line):
			return n, nil
		}
		_, end, err := valueBlock(b[i:], n, line)
		if end == 0 || err != nil {
			return 0, err
		}
		i += end
	}
}

// valueBlock checks the VALUE header line of b (n bytes with its "\r\n") and
// returns the key and the length of the whole block, or 0 if its data has
// not all arrived.
func valueBlock(b []byte, n int, line []byte) (key []byte, end int, err error) {
	tok, i := nextToken(line, 0)
	if string(tok) != "VALUE" {
		return nil, 0, fmt.Errorf("%w: unexpected line %q", ErrProtocol, line)
	}
	key, i = nextToken(line, i)
	flags, i := nextToken(line, i)
	size, i := nextToken(line, i)
	cas, i := nextToken(line, i)
	extra, _ := nextToken(line, i)
	nbytes, okSize := parseDigits(size)
	_, okFlags := parseDigits(flags)
	_, okCas := parseDigits(cas)
	if key == nil || !okFlags || !okSize || nbytes > math.MaxInt32 || (cas != nil && !okCas) || extra != nil {
		return nil, 0, fmt.Errorf("%w: bad VALUE line %q", ErrProtocol, line)
	}
	end, err = dataEnd(b, n, int(nbytes))
	return key, end, err
}

// dataEnd returns the end of the data block of size bytes and its "\r\n"
// that starts at b[n], or 0 if it has not all arrived.
func dataEnd(b []byte, n, size int) (int, error) {
	end := n + size + 2
	if len(b) < end {
		return 0, nil
	}
	if b[end-2] != '\r' || b[end-1] != '\n' {
		return 0, fmt.Errorf("%w: data block of %d bytes not ended by \\r\\n", ErrProtocol, size)
	}
	return end, nil
}

// parseDigits reads a non-empty run of decimal digits that fits 64 bits.
func parseDigits(tok []byte) (uint64, bool) {
	var v uint64
	for _, c := range tok {
		if c < '0' || c > '9' || v > (math.MaxUint64-uint64(c-'0'))/10 {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, len(tok) > 0
}

// readStatsReply frames lines up to END, or a single RESET, OK or error line.
func readStatsReply(b []byte) (int, error) {
	for i := 0; ; {
		n, line, err := replyLine(b[i:])
		if n == 0 || err != nil {
			return 0, err
		}
		single := i == 0 && (string(line) == "RESET" || string(line) == "OK" || isErrorLine(line))
		i += n
		if single || string(line) == "END" {
			return i, nil
		}
	}
}

// readMetaReply frames a meta reply: a VA header and its data, or one line.
func readMetaReply(b []byte) (int, error) {
	n, line, err := replyLine(b)
	if n == 0 || err != nil {
		return 0, err
	}
	tok, i := nextToken(line, 0)
	if string(tok) != "VA" {
		return n, nil
	}
	size, _ := nextToken(line, i)
	nbytes, ok := parseDigits(size)
	if !ok || nbytes > math.MaxInt32 {
		return 0, fmt.Errorf("%w: bad VA line %q", ErrProtocol, line)
	}
	return dataEnd(b, n, int(nbytes))
}
