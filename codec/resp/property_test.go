package resp

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// feedRequests parses in as it would arrive in chunks of the given size
// (0: all at once) and returns the frames read and the first error.
func feedRequests(in []byte, chunk int, lim Limits) ([]frame, error) {
	var frames []frame
	var req Request
	buf := []byte{}
	for sent := 0; sent < len(in) || len(buf) > 0; {
		if sent < len(in) {
			end := len(in)
			if chunk > 0 {
				end = min(sent+chunk, len(in))
			}
			buf, sent = append(buf, in[sent:end]...), end
		}
		n, err := ReadRequest(buf, &req, lim)
		if err != nil {
			return frames, err
		}
		if n == 0 {
			if sent == len(in) {
				return frames, fmt.Errorf("%d bytes left incomplete", len(buf))
			}
			continue
		}
		frames = append(frames, frame{args: argStrings(req.Args), inline: req.Inline})
		buf = buf[n:]
	}
	return frames, nil
}

// feedReplies frames in as it would arrive in chunks of the given size
// (0: all at once) and returns the reply lengths and the first error.
func feedReplies(in []byte, chunk int) ([]int, error) {
	var lengths []int
	buf := []byte{}
	for sent := 0; sent < len(in) || len(buf) > 0; {
		if sent < len(in) {
			end := len(in)
			if chunk > 0 {
				end = min(sent+chunk, len(in))
			}
			buf, sent = append(buf, in[sent:end]...), end
		}
		n, err := ReadReply(buf)
		if err != nil {
			return lengths, err
		}
		if n == 0 {
			if sent == len(in) {
				return lengths, fmt.Errorf("%d bytes left incomplete", len(buf))
			}
			continue
		}
		lengths = append(lengths, n)
		buf = buf[n:]
	}
	return lengths, nil
}

// randomArg returns a random argument, often binary and with CRLF inside.
func randomArg(r *rand.Rand) []byte {
	b := make([]byte, r.IntN(12))
	for i := range b {
		switch r.IntN(4) {
		case 0:
			b[i] = "\r\n\"' \\\x00"[r.IntN(7)]
		default:
			b[i] = byte(r.IntN(256))
		}
	}
	return b
}

// randomInline returns an inline line and the arguments it stands for,
// quoting each argument at random in one of the ways Redis accepts.
func randomInline(r *rand.Rand) (string, []string) {
	var line []byte
	var args []string
	for i := r.IntN(5); i >= 0; i-- {
		line = append(line, " \t"[r.IntN(2)])
		switch arg := randomArg(r); r.IntN(3) {
		case 0: // plain: letters only
			plain := []byte("k" + strconv.Itoa(r.IntN(1000)))
			line, args = append(line, plain...), append(args, string(plain))
		case 1: // double quotes, every byte as \xHH
			line = append(line, '"')
			for _, c := range arg {
				line = fmt.Appendf(line, `\x%02x`, c)
			}
			line, args = append(line, '"'), append(args, string(arg))
		default: // single quotes around printable text
			line = append(line, `'it\'s `...)
			line = append(line, strconv.Itoa(len(arg))...)
			line, args = append(line, '\''), append(args, "it's "+strconv.Itoa(len(arg)))
		}
	}
	return string(line) + "\r\n", args
}

func TestRequestsByteByByte(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 200; round++ {
		var in []byte
		var want []frame
		for i := r.IntN(6); i >= 0; i-- {
			if r.IntN(3) == 0 {
				line, args := randomInline(r)
				in, want = append(in, line...), append(want, frame{args: args, inline: true})
				continue
			}
			args := make([][]byte, 1+r.IntN(5))
			for j := range args {
				args[j] = randomArg(r)
			}
			in, want = AppendCommand(in, args...), append(want, frame{args: argStrings(args)})
		}
		for _, chunk := range []int{0, 1, 3, 7} {
			got, err := feedRequests(in, chunk, Limits{})
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("round %d chunk %d: got %+v, %v; want %+v\ninput %q", round, chunk, got, err, want, in)
			}
		}
	}
}

// appendRandomReply appends a random reply of any type to dst.
func appendRandomReply(r *rand.Rand, dst []byte, depth int) []byte {
	kinds := "+-:$_,#!=(*%~>|"
	if depth >= 4 {
		kinds = kinds[:10]
	}
	switch k := kinds[r.IntN(len(kinds))]; k {
	case '+', '-', ',', '(':
		return append(append(dst, k), "text 1.5\r\n"...)
	case ':':
		return AppendInt(dst, r.Int64()-r.Int64())
	case '$', '!', '=':
		arg := randomArg(r)
		if k == '$' && r.IntN(5) == 0 {
			return AppendNull(dst)
		}
		if k == '$' && r.IntN(4) == 0 {
			return appendStreamedString(r, dst)
		}
		dst = append(append(dst, k), strconv.Itoa(len(arg))+"\r\n"...)
		return append(append(dst, arg...), "\r\n"...)
	case '_':
		return append(dst, "_\r\n"...)
	case '#':
		return append(dst, "#t\r\n"...)
	default:
		n := r.IntN(4)
		if strings.IndexByte("*%~", k) >= 0 && r.IntN(3) == 0 {
			return appendStreamedAggregate(r, dst, k, n, depth)
		}
		dst = append(append(dst, k), strconv.Itoa(n)+"\r\n"...)
		elems := n
		switch k {
		case '%':
			elems = 2 * n
		case '|':
			elems = 2*n + 1
		}
		for i := 0; i < elems; i++ {
			dst = appendRandomReply(r, dst, depth+1)
		}
		return dst
	}
}

// appendStreamedString appends a streamed string of random chunks to dst.
func appendStreamedString(r *rand.Rand, dst []byte) []byte {
	dst = append(dst, "$?\r\n"...)
	for i := r.IntN(4); i > 0; i-- {
		chunk := randomArg(r)
		if len(chunk) == 0 {
			continue // a chunk of 0 bytes ends the string
		}
		dst = append(append(dst, ';'), strconv.Itoa(len(chunk))+"\r\n"...)
		dst = append(append(dst, chunk...), "\r\n"...)
	}
	return append(dst, ";0\r\n"...)
}

// appendStreamedAggregate appends a streamed array, set or map (k) of n
// random elements (a map's: n pairs) to dst.
func appendStreamedAggregate(r *rand.Rand, dst []byte, k byte, n, depth int) []byte {
	dst = append(dst, k, '?', '\r', '\n')
	if k == '%' {
		n *= 2
	}
	for range n {
		dst = appendRandomReply(r, dst, depth+1)
	}
	return append(dst, ".\r\n"...)
}

func TestRepliesByteByByte(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for round := 0; round < 300; round++ {
		var in []byte
		var want []int
		for i := r.IntN(5); i >= 0; i-- {
			before := len(in)
			in = appendRandomReply(r, in, 0)
			want = append(want, len(in)-before)
		}
		pos := 0
		for _, n := range want {
			if _, m, err := ParseValue(in[pos:]); m != n || err != nil {
				t.Fatalf("round %d: ParseValue n=%d err=%v, want %d\ninput %q", round, m, err, n, in[pos:])
			}
			pos += n
		}
		for _, chunk := range []int{0, 1, 3, 7, 2 + r.IntN(30)} {
			got, err := feedReplies(in, chunk)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("round %d chunk %d: got %v, %v; want %v\ninput %q", round, chunk, got, err, want, in)
			}
		}
	}
}
