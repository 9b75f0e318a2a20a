package resp

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// TestShortNumberLine checks readNumberLine's fast path against the full
// parse, on edge cases and random lines: where it answers, it answers the
// same.
func TestShortNumberLine(t *testing.T) {
	ins := []string{"$1\r\n", "*0\r\n", "$-1\r\n", ":-0\r\n", "$01\r\n", "$1\r", "$1\rx", "$1\n", "$12x\r\n",
		":" + strings.Repeat("9", 18) + "\r\n", ":" + strings.Repeat("9", 19) + "\r\n",
		":9223372036854775807\r\n", ":9223372036854775808\r\n", ":" + strings.Repeat("1", 21) + "\r\n",
		"$?\r\n", "$ 1\r\n", "$+1\r\n", "$1 \r\n", "$\r\n"}
	r := rand.New(rand.NewPCG(7, 8))
	for range 20000 {
		var b []byte
		for i := r.IntN(24); i >= 0; i-- {
			b = append(b, "0123456789\r\n-?"[r.IntN(14)])
		}
		ins = append(ins, "$"+string(b), ":"+strconv.FormatInt(r.Int64N(1<<(1+r.IntN(62))), 10)+"\r\n")
	}
	fast := 0
	for _, in := range ins {
		v, n := readShortNumberLine([]byte(in))
		if n == 0 {
			continue
		}
		fast++
		if wv, wn, ok := readAnyNumberLine([]byte(in)); !ok || wv != v || wn != n {
			t.Fatalf("%q: fast path %d, %d; full parse %d, %d, %v", in, v, n, wv, wn, ok)
		}
	}
	t.Logf("%d of %d lines taken by the fast path, all as the full parse takes them", fast, len(ins))
}
