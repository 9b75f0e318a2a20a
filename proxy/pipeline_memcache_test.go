package proxy_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/internal/proxytest"
)

// TestMemcacheConcurrentClients runs 200 clients at once, each pipelining
// sets and gets of its own keys through the proxy, and checks every value.
func TestMemcacheConcurrentClients(t *testing.T) {
	f := proxytest.NewMemcacheFixture(t, 4)
	const clients, rounds, perRound = 200, 5, 10
	errs := make(chan error, clients)
	for g := range clients {
		c := proxytest.Dial(t, f.Addr)
		go func() { errs <- clientRounds(c, g, rounds, perRound) }()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// clientRounds is one concurrent client: each round sets perRound keys
// and reads them back one by one and all at once, in one write. In the
// first round every twentieth client stores one value of 700 KB, so the
// frames queued on a server connection may exceed 1 MB together.
func clientRounds(c *proxytest.Conn, g, rounds, perRound int) error {
	for r := range rounds {
		var req, want bytes.Buffer
		keys := proxytest.NumberedKeys(fmt.Sprintf("conc:%d", g), perRound)
		var values strings.Builder
		for i, k := range keys {
			v := roundValue(g, r, i)
			fmt.Fprintf(&req, "set %s %d 0 %d\r\n%s\r\n", k, i, len(v), v)
			want.WriteString("STORED\r\n")
			fmt.Fprintf(&values, "VALUE %s %d %d\r\n%s\r\n", k, i, len(v), v)
		}
		for i, k := range keys {
			v := roundValue(g, r, i)
			fmt.Fprintf(&req, "get %s\r\n", k)
			fmt.Fprintf(&want, "VALUE %s %d %d\r\n%s\r\nEND\r\n", k, i, len(v), v)
		}
		fmt.Fprintf(&req, "get %s\r\n", strings.Join(keys, " "))
		want.WriteString(values.String() + "END\r\n")
		got, err := c.TryRoundTrip(req.String())
		if err != nil {
			return fmt.Errorf("client %d round %d: %w", g, r, err)
		}
		if got != want.String() {
			return fmt.Errorf("client %d round %d: got %d bytes, want %d; first difference at byte %d: got %.100q, want %.100q",
				g, r, len(got), want.Len(), diffAt(got, want.String()), got[diffAt(got, want.String()):], want.String()[diffAt(got, want.String()):])
		}
	}
	return nil
}

// roundValue is the value client g stores under its key i in round r.
func roundValue(g, r, i int) string {
	n := (g*7 + i*13 + r) % 300
	if g%20 == 0 && i == 0 && r == 0 {
		n = 700 << 10
	}
	return fmt.Sprintf("%d/%d/%d/%s", g, r, i, strings.Repeat(string(rune('a'+(g+r+i)%26)), n))
}

// diffAt returns the index of the first byte where a and b differ.
func diffAt(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

// TestMemcacheLargeFramesAmongSmall mixes clients that pipeline values of
// 600 KB (so a server connection's write buffer outgrows 1 MB) with clients
// busy with small requests on the same server connection; every value must
// come back intact.
func TestMemcacheLargeFramesAmongSmall(t *testing.T) {
	f := proxytest.NewMemcacheFixture(t, 1)
	const small, large, rounds = 20, 2, 6
	errs := make(chan error, small+large)
	for g := range small + large {
		c := proxytest.Dial(t, f.Addr)
		go func() {
			if g < large {
				errs <- largeRounds(c, g, rounds)
				return
			}
			errs <- clientRounds(c, g+1, rounds*3, 5)
		}()
	}
	for range small + large {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// largeRounds sets two 600 KB values in one write and reads them back.
func largeRounds(c *proxytest.Conn, g, rounds int) error {
	for r := range rounds {
		var req, want strings.Builder
		for i := range 2 {
			k := fmt.Sprintf("large:%d:%d", g, i)
			v := strings.Repeat(string(rune('A'+(g+r+i)%26)), 600<<10)
			fmt.Fprintf(&req, "set %s 0 0 %d\r\n%s\r\nget %s\r\n", k, len(v), v, k)
			fmt.Fprintf(&want, "STORED\r\nVALUE %s 0 %d\r\n%s\r\nEND\r\n", k, len(v), v)
		}
		got, err := c.TryRoundTrip(req.String())
		if err != nil {
			return fmt.Errorf("large client %d round %d: %w", g, r, err)
		}
		if d := diffAt(got, want.String()); d != len(got) || len(got) != want.Len() {
			return fmt.Errorf("large client %d round %d: got %d bytes, want %d; first difference at byte %d: %.80q",
				g, r, len(got), want.Len(), d, got[d:])
		}
	}
	return nil
}
