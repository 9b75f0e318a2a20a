package sockio

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// TestReaderWriter moves 16 MB through each kind of connection, more than
// a socket's buffers hold, so the writer must wait for room and the reader
// for bytes; then EOF.
func TestReaderWriter(t *testing.T) {
	for _, pc := range pairs {
		t.Run(pc.name, func(t *testing.T) {
			a, b := pc.pair(t)
			var w Writer
			w.Init(a)
			var r Reader
			r.Init(b)
			if r.Raw() != pc.raw || (w.raw != nil) != pc.raw {
				t.Fatalf("reader raw %v, writer raw %v; want %v", r.Raw(), w.raw != nil, pc.raw)
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
		})
	}
}

// TestReaderDeadline checks that a read with nothing coming ends at the
// read deadline.
func TestReaderDeadline(t *testing.T) {
	for _, pc := range pairs {
		t.Run(pc.name, func(t *testing.T) {
			a, _ := pc.pair(t)
			var r Reader
			r.Init(a)
			a.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if _, err := r.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read with nothing sent: %v, want a deadline error", err)
			}
		})
	}
}

// filler is a ReadWith caller as the proxy's client is: it takes its
// buffer inside the callback and gives it back when nothing has come.
type filler struct {
	buf     []byte // nil while waiting
	got     []byte
	err     error
	empty   int           // reads that found nothing
	onEmpty chan struct{} // told of the first empty read
	fn      func(fd uintptr) bool
}

func newFiller() *filler {
	f := &filler{onEmpty: make(chan struct{}, 1)}
	f.fn = f.fill
	return f
}

func (f *filler) fill(fd uintptr) bool {
	f.buf = GetBuffer(4 << 10)
	n, ok, err := ReadInto(fd, f.buf[:cap(f.buf)])
	if !ok {
		PutBuffer(f.buf)
		f.buf = nil
		if f.empty++; f.empty == 1 {
			f.onEmpty <- struct{}{}
		}
		return false
	}
	f.got = append(f.got[:0], f.buf[:n]...)
	f.err = err
	PutBuffer(f.buf)
	f.buf = nil
	return true
}

// TestReadWithWaits checks that ReadWith's fill is told when nothing has
// come (EAGAIN), gives its buffer back and waits, and is called again
// when bytes come; then EOF.
func TestReadWithWaits(t *testing.T) {
	if !rawPath {
		t.Skip("no raw reads on this system")
	}
	for _, pc := range pairs[:2] {
		t.Run(pc.name, func(t *testing.T) {
			a, b := pc.pair(t)
			var r Reader
			r.Init(b)
			f := newFiller()
			go func() {
				<-f.onEmpty
				a.Write([]byte("hello"))
			}()
			if err := r.ReadWith(f.fn); err != nil {
				t.Fatal(err)
			}
			if string(f.got) != "hello" || f.err != nil || f.empty == 0 {
				t.Fatalf("got %q, %v after %d empty reads; want hello, nil after at least one", f.got, f.err, f.empty)
			}
			if f.buf != nil {
				t.Fatal("fill kept its buffer")
			}
			a.Close()
			if err := r.ReadWith(f.fn); err != nil {
				t.Fatal(err)
			}
			if len(f.got) != 0 || f.err != io.EOF {
				t.Fatalf("after the peer closed: %q, %v; want EOF", f.got, f.err)
			}
		})
	}
}

// TestReadWithDeadline checks that a ReadWith with nothing coming ends at
// the read deadline, its fill holding no buffer.
func TestReadWithDeadline(t *testing.T) {
	if !rawPath {
		t.Skip("no raw reads on this system")
	}
	_, b := tcpPair(t)
	var r Reader
	r.Init(b)
	f := newFiller()
	b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if err := r.ReadWith(f.fn); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadWith with nothing sent: %v, want a deadline error", err)
	}
	if f.empty == 0 || f.buf != nil {
		t.Fatalf("%d empty reads, buffer held %v; want at least one, none held", f.empty, f.buf != nil)
	}
}

// TestReadAllocs checks that reading allocates nothing: Read, and
// ReadWith with a fill made once.
func TestReadAllocs(t *testing.T) {
	if !rawPath {
		t.Skip("no raw reads on this system")
	}
	a, b := tcpPair(t)
	if _, err := a.Write(make([]byte, 4000)); err != nil {
		t.Fatal(err)
	}
	var r Reader
	r.Init(b)
	buf := make([]byte, 1)
	if _, err := r.Read(buf); err != nil { // wait for the bytes
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() { r.Read(buf) }); n != 0 {
		t.Errorf("Read: %v allocations, want 0", n)
	}
	var fn func(fd uintptr) bool
	fill := func(fd uintptr) bool {
		_, ok, _ := ReadInto(fd, buf)
		return ok
	}
	fn = fill
	if n := testing.AllocsPerRun(1000, func() { r.ReadWith(fn) }); n != 0 {
		t.Errorf("ReadWith: %v allocations, want 0", n)
	}
}

// TestIsReset resets a connection (close with linger 0) and checks that
// the peer's read error is a reset, and that other errors are not.
func TestIsReset(t *testing.T) {
	a, b := tcpPair(t)
	a.(*net.TCPConn).SetLinger(0)
	a.Close()
	var r Reader
	r.Init(b)
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := r.Read(make([]byte, 10))
	if !IsReset(err) || !IsReset(fmt.Errorf("client: %w", err)) {
		t.Fatalf("read after a reset: %v, not a reset", err)
	}
	for _, err := range []error{nil, io.EOF, net.ErrClosed, os.ErrDeadlineExceeded} {
		if IsReset(err) {
			t.Errorf("IsReset(%v) = true", err)
		}
	}
}

// TestFD checks which connections have a socket for a Poller.
func TestFD(t *testing.T) {
	a, _ := tcpPair(t)
	u, _ := unixPair(t)
	p, _ := pipePair(t)
	tc := tls.Client(a, &tls.Config{})
	for _, c := range []struct {
		name string
		nc   net.Conn
		has  bool
	}{
		{"tcp", a, rawPath},
		{"unix", u, rawPath},
		{"pipe", p, false},
		{"tls", tc, false},
		{"tls NetConn", tc.NetConn(), rawPath},
	} {
		if fd := FD(c.nc); (fd >= 0) != c.has {
			t.Errorf("%s: FD %d, want a socket: %v", c.name, fd, c.has)
		}
	}
}
