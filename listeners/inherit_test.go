//go:build !windows

package listeners_test

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/listeners"
)

// TestSameAddress matches sockets to listen values as a reload and an
// upgrade do. Host names are localhost only, which resolves without a
// network.
func TestSameAddress(t *testing.T) {
	tcp := func(ip string, port int) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: port} }
	tests := []struct {
		name string
		a    net.Addr
		l    config.Listen
		want bool
	}{
		{"same unix path", &net.UnixAddr{Name: "/run/x.sock", Net: "unix"}, config.Listen{Network: "unix", Addr: "/run/./x.sock"}, true},
		{"other unix path", &net.UnixAddr{Name: "/run/x.sock", Net: "unix"}, config.Listen{Network: "unix", Addr: "/run/y.sock"}, false},
		{"unix path, tcp listen", &net.UnixAddr{Name: "/run/x.sock", Net: "unix"}, config.Listen{Network: "tcp", Addr: "/run/x.sock"}, false},
		{"same address and port", tcp("127.0.0.1", 7000), config.Listen{Network: "tcp", Addr: "127.0.0.1:7000"}, true},
		{"other port", tcp("127.0.0.1", 7000), config.Listen{Network: "tcp", Addr: "127.0.0.1:7001"}, false},
		{"other address", tcp("127.0.0.2", 7000), config.Listen{Network: "tcp", Addr: "127.0.0.1:7000"}, false},
		{"port 0", tcp("127.0.0.1", 0), config.Listen{Network: "tcp", Addr: "127.0.0.1:0"}, false},
		{"0.0.0.0 and [::]", tcp("::", 7000), config.Listen{Network: "tcp", Addr: "0.0.0.0:7000"}, true},
		{"no host and [::]", tcp("::", 7000), config.Listen{Network: "tcp", Addr: ":7000"}, true},
		{"0.0.0.0 and an address", tcp("127.0.0.1", 7000), config.Listen{Network: "tcp", Addr: "0.0.0.0:7000"}, false},
		{"IPv6", tcp("::1", 7000), config.Listen{Network: "tcp", Addr: "[::1]:7000"}, true},
		{"localhost", tcp("127.0.0.1", 7000), config.Listen{Network: "tcp", Addr: "localhost:7000"}, true},
		{"tcp address, unix listen", tcp("127.0.0.1", 7000), config.Listen{Network: "unix", Addr: "127.0.0.1:7000"}, false},
	}
	for _, tc := range tests {
		if got := listeners.SameAddress(tc.a, tc.l); got != tc.want {
			t.Errorf("%s: SameAddress(%v, %+v) = %v, want %v", tc.name, tc.a, tc.l, got, tc.want)
		}
	}
}

// TestFile takes a copy of a listening socket as an upgrade does: once
// os/exec has taken its descriptor (Fd), the socket's own Accept still
// returns at its deadline (a copy net's File makes turns the socket
// blocking, and Accept ties its thread up until a connect), and the copy
// accepts.
func TestFile(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := listeners.File(ln)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Fd() // as os/exec does with ExtraFiles
	done := make(chan error, 1)
	go func() {
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(50 * time.Millisecond))
		_, err := ln.Accept()
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Accept: %v, want the deadline", err)
		}
	case <-time.After(5 * time.Second):
		if nc, err := net.Dial("tcp", ln.Addr().String()); err == nil { // ends the Accept
			defer nc.Close()
		}
		<-done
		t.Fatal("Accept ignores its deadline: the socket became blocking")
	}
	cp, err := net.FileListener(f)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	cp.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	ac, err := cp.Accept()
	if err != nil {
		t.Fatalf("the copy does not accept: %v", err)
	}
	ac.Close()
}
