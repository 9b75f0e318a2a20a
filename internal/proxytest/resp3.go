package proxytest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/codec/resp"
)

// ReadAny reads one reply of any RESP2 or RESP3 type and returns its exact
// bytes. codec/resp.ReadReply frames it, so every RESP3 type is known, at
// any nesting; on an error, the bytes read so far are returned.
func ReadAny(r *bufio.Reader) (string, error) {
	var acc []byte
	for {
		if r.Buffered() == 0 {
			if _, err := r.Peek(1); err != nil {
				if err == io.EOF && len(acc) > 0 {
					err = io.ErrUnexpectedEOF
				}
				return string(acc), err
			}
		}
		b, _ := r.Peek(r.Buffered())
		cand := append(acc, b...)
		n, err := resp.ReadReply(cand)
		if err != nil {
			return string(cand), fmt.Errorf("bad reply %q: %w", Short(string(cand)), err)
		}
		if n > 0 {
			r.Discard(n - len(acc))
			return string(cand[:n]), nil
		}
		acc = cand
		r.Discard(len(b))
	}
}

// ReadAny returns the next reply's exact bytes, of any RESP2 or RESP3
// type.
func (c *Conn) ReadAny() string {
	c.tb.Helper()
	raw, err := ReadAny(c.R)
	if err != nil {
		c.tb.Fatalf("read reply: %v (read %q)", err, Short(raw))
	}
	return raw
}

// DoAny sends one command and returns its reply's exact bytes, of any
// RESP2 or RESP3 type.
func (c *Conn) DoAny(args ...string) string {
	c.tb.Helper()
	c.Write(EncodeCommand(nil, args...))
	return c.ReadAny()
}

// PipelineAny writes cmds in one write on conn, from a goroutine of its
// own so that neither side blocks on a full socket, and returns the exact
// bytes of their replies, of any RESP2 or RESP3 type.
func PipelineAny(t *testing.T, c *Conn, cmds [][]string) []string {
	t.Helper()
	var req []byte
	for _, cmd := range cmds {
		req = EncodeCommand(req, cmd...)
	}
	c.Net.SetDeadline(time.Now().Add(30 * time.Second))
	werr := make(chan error, 1)
	go func(nc net.Conn) {
		_, err := nc.Write(req)
		werr <- err
	}(c.Net)
	replies := make([]string, len(cmds))
	for i := range replies {
		raw, err := ReadAny(c.R)
		if err != nil {
			c.Net.Close()
			<-werr
			t.Fatalf("reply %d of %d (%q): %v (read %q)", i, len(cmds), cmds[i], err, Short(raw))
		}
		replies[i] = raw
	}
	if err := <-werr; err != nil {
		t.Fatalf("write: %v", err)
	}
	return replies
}

// Shape renders a reply's types and structure without its values: each
// element is its type byte, an aggregate is followed by its elements in
// brackets, and a map's keys keep their text ("%[$server:$ $proto::]"). Two
// replies of one shape are the same kinds of value in the same places,
// as a client library decodes them; an undecodable reply is returned as is.
func Shape(raw string) string {
	v, n, err := resp.ParseValue([]byte(raw))
	if err != nil || n != len(raw) {
		return "unparsable " + raw
	}
	var b strings.Builder
	writeShape(&b, v)
	return b.String()
}

func writeShape(b *strings.Builder, v resp.Value) {
	b.WriteByte(byte(v.Kind))
	if v.Null && v.Kind != resp.KindNull {
		b.WriteString("null")
	}
	if v.Elems == nil {
		return
	}
	b.WriteByte('[')
	for i, e := range v.Elems {
		if i > 0 {
			b.WriteByte(' ')
		}
		writeShape(b, e)
		if v.Kind == resp.KindMap && i%2 == 0 {
			fmt.Fprintf(b, "%q:", e.Str)
		}
	}
	b.WriteByte(']')
}

// SortSet sorts the elements of every RESP3 set ('~') in a reply, at any
// depth, by their bytes: Redis does not define their order, and two
// servers holding the same set may list it differently. Everything else is
// kept byte for byte; a reply it cannot frame is returned as is.
func SortSet(raw string) string {
	out, n := sortSets([]byte(raw))
	if n != len(raw) {
		return raw
	}
	return string(out)
}

// sortSets returns the reply b starts with, its sets sorted, and the
// reply's length; n == 0 when b does not start with a whole reply.
func sortSets(b []byte) (out []byte, n int) {
	whole, err := resp.ReadReply(b)
	if err != nil || whole == 0 {
		return nil, 0
	}
	if !strings.ContainsRune("*%~>", rune(b[0])) {
		return b[:whole], whole
	}
	eol := strings.Index(string(b), "\r\n")
	count, err := strconv.Atoi(string(b[1:eol]))
	if err != nil || count < 0 {
		return b[:whole], whole
	}
	if b[0] == '%' {
		count *= 2
	}
	pos := eol + 2
	elems := make([]string, count)
	for i := range elems {
		e, m := sortSets(b[pos:])
		if m == 0 {
			return nil, 0
		}
		elems[i], pos = string(e), pos+m
	}
	if b[0] == '~' {
		slices.Sort(elems)
	}
	return append(slices.Clip(b[:eol+2]), strings.Join(elems, "")...), pos
}
