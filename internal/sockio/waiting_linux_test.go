package sockio

import (
	"errors"
	"testing"
	"time"
)

// TestWaiting: a socket put with its value is reported once it has bytes
// and its value comes back once from Ready; re-armed with Put, it is
// reported again; TakeAll takes the waiting ones (as pick says) and,
// closing, makes Put fail.
func TestWaiting(t *testing.T) {
	w, err := NewWaiting[string]()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	a, b := tcpPair(t)
	c, d := tcpPair(t)
	fb, fd := FD(b), FD(d)
	if err := w.Put(fb, "b", false); err != nil {
		t.Fatal(err)
	}
	if err := w.Put(fd, "d", false); err != nil {
		t.Fatal(err)
	}
	fds := make([]int, 4)
	if n, err := w.Next(fds, time.Now().Add(50*time.Millisecond)); n != 0 || err == nil {
		t.Fatalf("nothing sent: %d reported, %v", n, err)
	}
	a.Write([]byte("x"))
	n, err := w.Next(fds, time.Now().Add(5*time.Second))
	if err != nil || n != 1 || fds[0] != fb {
		t.Fatalf("after a write to b: %v, %v; want [%d]", fds[:n], err, fb)
	}
	if v, ok := w.Ready(fb); !ok || v != "b" {
		t.Fatalf("Ready(b) = %q, %v", v, ok)
	}
	if _, ok := w.Ready(fb); ok {
		t.Fatal("Ready(b) twice")
	}
	// Re-armed, with its byte still unread: reported at once.
	if err := w.Put(fb, "b2", true); err != nil {
		t.Fatal(err)
	}
	if n, err := w.Next(fds, time.Now().Add(5*time.Second)); err != nil || n != 1 || fds[0] != fb {
		t.Fatalf("re-armed b: %v, %v", fds[:n], err)
	}
	if v, _ := w.Ready(fb); v != "b2" {
		t.Fatalf("Ready(b) = %q, want b2", v)
	}
	if err := w.Put(fb, "b3", true); err != nil {
		t.Fatal(err)
	}
	if got := w.TakeAll(func(v string) bool { return v == "d" }, false); len(got) != 1 || got[0] != "d" {
		t.Fatalf("TakeAll(d) = %q", got)
	}
	c.Write([]byte("y")) // d is out of the set: never reported
	got := w.TakeAll(nil, true)
	if len(got) != 1 || got[0] != "b3" {
		t.Fatalf("TakeAll(all) = %q, want [b3]", got)
	}
	if err := w.Put(fd, "d", false); !errors.Is(err, ErrSetClosed) {
		t.Fatalf("Put after closing: %v, want ErrSetClosed", err)
	}
	if n, err := w.Next(fds, time.Now().Add(50*time.Millisecond)); n != 0 {
		t.Fatalf("after TakeAll: %v reported, %v", fds[:n], err)
	}
}
