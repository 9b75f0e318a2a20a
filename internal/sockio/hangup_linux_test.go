package sockio

import (
	"net"
	"testing"
	"time"
)

// TestHangups checks that a watched socket whose peer closes is told at
// once, that bytes from the peer are not a hang-up, and that Close ends
// the watching goroutine.
func TestHangups(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	own, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	fd := FD(own)
	if fd < 0 {
		t.Fatal("no descriptor")
	}
	var h Hangups
	defer h.Close()
	hup, stop := h.Watch(fd)
	defer stop()
	peer.Write([]byte("more requests"))
	select {
	case <-hup:
		t.Fatal("bytes from the peer told as a hang-up")
	case <-time.After(100 * time.Millisecond):
	}
	start := time.Now()
	peer.Close()
	select {
	case <-hup:
		t.Logf("hang-up told after %v", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("hang-up not told within 5 s")
	}
}
