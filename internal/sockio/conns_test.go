package sockio

import (
	"net"
	"path/filepath"
	"runtime"
	"testing"
)

// rawPath says whether this system takes the raw path (see the package
// doc).
const rawPath = runtime.GOOS == "linux"

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return pairOn(t, ln)
}

// unixPair returns the two ends of a unix socket connection.
func unixPair(t testing.TB) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Skipf("no unix sockets here: %v", err)
	}
	return pairOn(t, ln)
}

// pipePair returns the two ends of a net.Pipe, which has no socket.
func pipePair(t testing.TB) (a, b net.Conn) {
	a, b = net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// pairOn dials ln and returns the dialled and the accepted end.
func pairOn(t testing.TB, ln net.Listener) (a, b net.Conn) {
	t.Helper()
	defer ln.Close()
	done := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		done <- c
	}()
	a, err := net.Dial(ln.Addr().Network(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b = <-done
	if b == nil {
		a.Close()
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// pairs are the kinds of connection the tests run over, and whether each
// takes the raw path.
var pairs = []struct {
	name string
	pair func(testing.TB) (net.Conn, net.Conn)
	raw  bool
}{
	{"tcp", tcpPair, rawPath},
	{"unix", unixPair, rawPath},
	{"pipe", pipePair, false},
}
