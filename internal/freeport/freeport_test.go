package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestPick(t *testing.T) {
	low := EphemeralLow()
	seen := map[int]bool{}
	for range 50 {
		p, err := Pick("127.0.0.1", func(p int) bool { return seen[p] })
		if err != nil {
			t.Fatal(err)
		}
		if p < First || p >= low || seen[p] {
			t.Fatalf("port %d: want a new one in [%d, %d)", p, First, low)
		}
		seen[p] = true
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("listen on the picked port %d: %v", p, err)
		}
		ln.Close()
	}
	if _, err := Pick("127.0.0.1", func(int) bool { return true }); err == nil {
		t.Error("Pick found a port when every one is skipped")
	}
}
