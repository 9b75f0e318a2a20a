package pools

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		done <- c
	}()
	a, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b = <-done
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// TestRawWriterReader moves 16 MB through a socket pair, more than the
// socket buffers hold, so the writer must wait for room and the reader
// for bytes; then EOF.
func TestRawWriterReader(t *testing.T) {
	a, b := tcpPair(t)
	var w Writer
	w.Init(a)
	var r Reader
	r.Init(b)
	if w.raw == nil || r.raw == nil {
		t.Fatal("TCP connections should use raw system calls")
	}
	data := make([]byte, 16<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	errc := make(chan error, 1)
	go func() {
		err := w.Write(data)
		a.Close()
		errc <- err
	}()
	var got bytes.Buffer
	buf := make([]byte, 100<<10)
	for {
		n, err := r.Read(buf)
		got.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read after %d bytes: %v", got.Len(), err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("read %d bytes, not the %d written", got.Len(), len(data))
	}
}

// TestRawWriterDeadline checks that a write to a peer that does not read
// ends at the write deadline, and a read with nothing coming at the read
// deadline.
func TestRawWriterDeadline(t *testing.T) {
	a, b := tcpPair(t)
	var w Writer
	w.Init(a)
	a.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	if err := w.Write(make([]byte, 64<<20)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write to a peer that does not read: %v, want a deadline error", err)
	}
	var r Reader
	r.Init(a)
	a.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read with nothing sent: %v, want a deadline error", err)
	}
	_ = b
}

// TestRawWritev writes 3,000 buffers (more than one writev takes, some
// empty, some large) and checks the bytes arrive in order.
func TestRawWritev(t *testing.T) {
	a, b := tcpPair(t)
	var w Writer
	w.Init(a)
	var bufs [][]byte
	var want bytes.Buffer
	for i := range 3000 {
		n := i % 7
		if i%500 == 0 {
			n = 1 << 20
		}
		p := bytes.Repeat([]byte{byte(i)}, n)
		bufs = append(bufs, p)
		want.Write(p)
	}
	errc := make(chan error, 1)
	go func() {
		err := w.Writev(bufs)
		a.Close()
		errc <- err
	}()
	got, err := io.ReadAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("writev: %v", err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("read %d bytes, want %d in order", len(got), want.Len())
	}
}
