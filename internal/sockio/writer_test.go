package sockio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// TestWriterDeadline checks that a write to a peer that does not read
// ends at the write deadline.
func TestWriterDeadline(t *testing.T) {
	for _, pc := range pairs {
		t.Run(pc.name, func(t *testing.T) {
			a, _ := pc.pair(t)
			var w Writer
			w.Init(a)
			a.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			if err := w.Write(make([]byte, 64<<20)); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("write to a peer that does not read: %v, want a deadline error", err)
			}
		})
	}
}

// TestWritev writes 3,000 buffers (more than one writev takes, some empty,
// some large) and checks the bytes arrive in order.
func TestWritev(t *testing.T) {
	for _, pc := range pairs {
		t.Run(pc.name, func(t *testing.T) {
			a, b := pc.pair(t)
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
		})
	}
}

// smallBuffers shrinks both ends' socket buffers, so that they fill soon.
func smallBuffers(t *testing.T, a, b net.Conn) {
	t.Helper()
	if err := a.(*net.TCPConn).SetWriteBuffer(4 << 10); err != nil {
		t.Fatal(err)
	}
	if err := b.(*net.TCPConn).SetReadBuffer(4 << 10); err != nil {
		t.Fatal(err)
	}
}

// readN reads n bytes from c, or fails the test.
func readN(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, n)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading the %d bytes written: %v", n, err)
	}
	return got
}

// TestTryWritePartial fills a socket whose peer does not read: TryWrite
// returns at once with the part the socket took, then with nothing; the
// peer receives exactly that part.
func TestTryWritePartial(t *testing.T) {
	if !rawPath {
		t.Skip("no raw writes on this system")
	}
	a, b := tcpPair(t)
	smallBuffers(t, a, b)
	var w Writer
	w.Init(a)
	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = byte(i * 13)
	}
	n, err := w.TryWrite(data)
	if err != nil || n <= 0 || n >= len(data) {
		t.Fatalf("TryWrite of %d bytes: %d, %v; want part of it", len(data), n, err)
	}
	if m, err := w.TryWrite(data[n:]); err != nil || m != 0 {
		t.Fatalf("TryWrite to a full socket: %d, %v; want 0, nil", m, err)
	}
	if got := readN(t, b, n); !bytes.Equal(got, data[:n]) {
		t.Fatal("the peer did not receive the part written")
	}
}

// TestTryWritevPartial does the same with TryWritev over many buffers:
// the buffers are shortened by what was written.
func TestTryWritevPartial(t *testing.T) {
	if !rawPath {
		t.Skip("no raw writes on this system")
	}
	a, b := tcpPair(t)
	smallBuffers(t, a, b)
	var w Writer
	w.Init(a)
	var want []byte
	var bufs [][]byte
	for i := range 2000 {
		p := bytes.Repeat([]byte{byte(i)}, 4<<10+i%5)
		bufs = append(bufs, p)
		want = append(want, p...)
	}
	if err := w.TryWritev(bufs); err != nil {
		t.Fatal(err)
	}
	left := 0
	for _, p := range bufs {
		left += len(p)
	}
	n := len(want) - left
	if n <= 0 || left == 0 {
		t.Fatalf("TryWritev wrote %d of %d bytes; want part of them", n, len(want))
	}
	if got := readN(t, b, n); !bytes.Equal(got, want[:n]) {
		t.Fatal("the peer did not receive the part written")
	}
}

// TestTryWriteWithoutRaw checks that without raw writes (a pipe, TLS, or
// off Linux) TryWrite and TryWritev write nothing and do not wait.
func TestTryWriteWithoutRaw(t *testing.T) {
	a, _ := pipePair(t)
	var w Writer
	w.Init(a)
	if n, err := w.TryWrite([]byte("x")); n != 0 || err != nil {
		t.Fatalf("TryWrite on a pipe: %d, %v; want 0, nil", n, err)
	}
	bufs := [][]byte{[]byte("x")}
	if err := w.TryWritev(bufs); err != nil || len(bufs[0]) != 1 {
		t.Fatalf("TryWritev on a pipe: %v, %q left; want nil, all left", err, bufs[0])
	}
}

// TestWriteAllocs checks that writing allocates nothing.
func TestWriteAllocs(t *testing.T) {
	a, b := tcpPair(t)
	go io.Copy(io.Discard, b)
	var w Writer
	w.Init(a)
	p := make([]byte, 100)
	bufs := make([][]byte, 3)
	allocs := map[string]func(){
		"Write":     func() { w.Write(p) },
		"TryWrite":  func() { w.TryWrite(p) },
		"Writev":    func() { bufs[0], bufs[1], bufs[2] = p, p, p; w.Writev(bufs) },
		"TryWritev": func() { bufs[0], bufs[1], bufs[2] = p, p, p; w.TryWritev(bufs) },
	}
	for name, f := range allocs {
		f() // the iovecs grow once
		if !rawPath && name != "Write" {
			continue // net.Buffers' WriteTo may allocate
		}
		if n := testing.AllocsPerRun(1000, f); n != 0 {
			t.Errorf("%s: %v allocations, want 0", name, n)
		}
	}
}
