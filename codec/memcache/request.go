package memcache

import (
	"bytes"
	"math"
)

// MaxKeyLen is the longest key memcached accepts (KEY_MAX_LENGTH).
const MaxKeyLen = 250

// Default limits. DefaultMaxLine is memcached's own: it closes a connection
// whose unfinished line (other than a get or gets) exceeds 2048 bytes.
// DefaultMaxValue is memcached's default item size limit (-I 1m); memcached
// refuses values a little shorter than that too, since the limit counts the
// item's header and key, but such requests are framed the same way either way.
const (
	DefaultMaxKeys  = 1 << 16
	DefaultMaxValue = 1 << 20
	DefaultMaxLine  = 2048
)

// maxTokens is how many tokens memcached's tokenizer splits off a line
// (MAX_TOKENS less the terminator); a 24th means "and more".
const maxTokens = 23

// Limits bound what a request may claim, so a hostile length never makes the
// proxy buffer without end. A zero (or negative) field means its default.
//
// memcached reads a get or gets line of any length; the proxy accepts one up
// to MaxLine + MaxKeys*(MaxKeyLen+1) bytes (about 16 MB with the defaults)
// with at most MaxKeys keys. Any other line longer than MaxLine closes the
// connection, whether or not its "\n" has arrived: memcached processes such a
// line only when its end happens to arrive in the same read, and the proxy
// must not depend on TCP segmentation.
type Limits struct {
	MaxKeys  int // most keys in one get, gets, gat or gats; default DefaultMaxKeys
	MaxValue int // longest data block of a storage command; default DefaultMaxValue
	MaxLine  int // longest command line, without its "\n"; default DefaultMaxLine
}

// withDefaults returns l with zero fields replaced by the defaults and every
// field small enough that offsets computed from it never overflow.
func (l Limits) withDefaults() Limits {
	if l.MaxKeys <= 0 {
		l.MaxKeys = DefaultMaxKeys
	}
	if l.MaxValue <= 0 {
		l.MaxValue = DefaultMaxValue
	}
	if l.MaxLine <= 0 {
		l.MaxLine = DefaultMaxLine
	}
	l.MaxKeys = min(l.MaxKeys, 1<<22)
	l.MaxValue = min(l.MaxValue, math.MaxInt32-2)
	l.MaxLine = min(l.MaxLine, 1<<26)
	return l
}

// maxGetLine is the longest get or gets line accepted.
func (l Limits) maxGetLine() int { return l.MaxLine + l.MaxKeys*(MaxKeyLen+1) }

// Request is one parsed request. Its byte slices point into the buffer given
// to ReadRequest (no copies) and stay valid as long as that buffer is not
// overwritten; each ends its capacity where it ends.
type Request struct {
	Cmd Command
	// Keys are the keys: every key of a retrieval (after the exptime for gat
	// and gats; none for "gat 10", which memcached answers with "END"), the
	// one key of other keyed commands (the second token of a meta command),
	// none for version, quit, verbosity, flush_all, stats and mn.
	Keys    [][]byte
	Exptime []byte // the exptime token of gat and gats
	// NoReply is set when the request ends in "noreply" (storage, delete,
	// incr, decr, touch, verbosity, flush_all): memcached sends no reply.
	NoReply bool
	// Quiet is set when a meta command carries the q flag: memcached then
	// leaves out the common replies (EN for mg, HD for ms and md, ...).
	Quiet bool
	// Base64Key is set when a meta command carries the b flag: Keys[0] is
	// base64, and memcached stores the decoded key.
	Base64Key bool
	Data      []byte // the data block of a storage command, without its "\r\n"
	Line      []byte // the command line, without its "\r\n" or "\n"
}

// reset empties r, keeping the backing array of its keys.
func (r *Request) reset() {
	*r = Request{Keys: r.Keys[:0]}
}

// ReadRequest parses the first complete request in b into req, reusing the
// backing array of req.Keys. It returns the length n of the request's frame
// in b: the caller forwards b[:n] unchanged and continues at b[n:].
//
// n == 0 with a nil error means b holds no complete request yet. A non-nil
// error is an *Error for a request memcached 1.6 would refuse; its Reply is
// memcached's answer, n is what memcached consumes of b (a line, or a line and
// a data block that lacks its "\r\n"; 0 when Close is set), and Swallow and
// Close tell the rest (see Error). After an error that does not close, only
// req.Cmd and req.Line are meaningful.
//
// Deliberate differences from memcached: the limits (see Limits), with
// "CLIENT_ERROR too many keys" for a retrieval of more than MaxKeys keys; a
// value longer than MaxValue is answered at once (memcached answers once it
// has swallowed the block) and, for set and ms, leaves the key's old value in
// place (memcached drops it); an ms with such a value and a bad flag gets the
// too-large answer, not memcached's flag error; and commands outside the
// Command list (slabs, lru_crawler, me, shutdown, ...) are answered "ERROR".
func ReadRequest(b []byte, req *Request, lim Limits) (n int, err error) {
	req.reset()
	lim = lim.withDefaults()
	end, err := lineEnd(b, lim)
	if err != nil || end < 0 {
		return 0, err
	}
	line := b[:end:end]
	if end > 1 && line[end-1] == '\r' {
		line = line[: end-1 : end-1]
	}
	req.Line = line
	n, err = parseRequest(b, end+1, req, lim)
	if n == 0 {
		req.reset()
	}
	return n, err
}

// lineEnd returns the index of the "\n" ending b's first line, -1 if it has
// not arrived, or an error if the line is too long to wait for.
func lineEnd(b []byte, lim Limits) (int, error) {
	limit := lim.maxGetLine()
	i := bytes.IndexByte(b[:min(len(b), limit+1)], '\n')
	l := i
	if i < 0 {
		l = len(b)
	}
	if l > lim.MaxLine && (l > limit || !multiGetLine(b)) {
		return -1, &Error{Reply: replyLineTooLong, NoReply: true, Close: true}
	}
	return i, nil
}

// multiGetLine reports whether memcached lets line grow beyond 2048 bytes: at
// most 100 spaces, then "get " or "gets ".
func multiGetLine(line []byte) bool {
	i := 0
	for i < len(line) && line[i] == ' ' {
		i++
	}
	if i > 100 {
		return false
	}
	return bytes.HasPrefix(line[i:], []byte("get ")) || bytes.HasPrefix(line[i:], []byte("gets "))
}

// nextToken returns the token of s that starts at or after i (tokens are
// separated by spaces only, as memcached splits them) and the index after it;
// tok is nil when no token is left.
func nextToken(s []byte, i int) (tok []byte, next int) {
	for i < len(s) && s[i] == ' ' {
		i++
	}
	start := i
	for i < len(s) && s[i] != ' ' {
		i++
	}
	if start == i {
		return nil, i
	}
	return s[start:i:i], i
}

// split fills t with the first tokens of s, as many as fit, and reports how
// many it found and whether more follow.
func split(s []byte, t [][]byte) (n int, more bool) {
	i := 0
	for n < len(t) {
		tok, j := nextToken(s, i)
		if tok == nil {
			return n, false
		}
		t[n], n, i = tok, n+1, j
	}
	tok, _ := nextToken(s, i)
	return n, tok != nil
}

// parseRequest checks the line of req (which ends at b[n]) as memcached does
// and reads a storage command's data block. It returns the frame's length.
func parseRequest(b []byte, n int, req *Request, lim Limits) (int, error) {
	text := req.Line
	if i := bytes.IndexByte(text, 0); i >= 0 {
		text = text[:i] // memcached reads the line as a C string
	}
	var t [maxTokens][]byte
	nt, more := split(text, t[:])
	count := nt // memcached's token count: one past maxTokens means "more"
	if more {
		count++
	}
	if nt == 0 || len(t[0]) < 2 {
		return n, reject(replyError, false)
	}
	req.Cmd = lookup(t[0])
	sp := &specs[req.Cmd]
	if req.Cmd == CmdUnknown || count < sp.minTok || (sp.maxTok > 0 && count > sp.maxTok) {
		return n, reject(replyError, false)
	}
	args := t[:nt]
	switch {
	case req.Cmd.Retrieval():
		return n, parseRetrieval(text, req, lim)
	case req.Cmd.Meta():
		return parseMeta(b, n, args, count, req, lim)
	case req.Cmd.Storage():
		return parseStorage(b, n, args, req, lim)
	}
	return n, parseSimple(args, req)
}
