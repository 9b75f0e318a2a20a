package sockio

import (
	"errors"
	"os"
	"slices"
	"testing"
	"time"
)

// waitFor waits up to d for sockets to be reported.
func waitFor(t *testing.T, p *Poller, d time.Duration) ([]int, error) {
	t.Helper()
	fds := make([]int, 8)
	n, err := p.Wait(fds, time.Now().Add(d))
	return fds[:n], err
}

// wantReported fails unless exactly fd is reported within a second.
func wantReported(t *testing.T, p *Poller, fd int, why string) {
	t.Helper()
	got, err := waitFor(t, p, time.Second)
	if err != nil || !slices.Equal(got, []int{fd}) {
		t.Fatalf("%s: reported %v, %v; want [%d]", why, got, err, fd)
	}
}

// wantQuiet fails if anything is reported within 50 ms.
func wantQuiet(t *testing.T, p *Poller, why string) {
	t.Helper()
	got, err := waitFor(t, p, 50*time.Millisecond)
	if !errors.Is(err, os.ErrDeadlineExceeded) || len(got) != 0 {
		t.Fatalf("%s: reported %v, %v; want nothing until the deadline", why, got, err)
	}
}

func newPoller(t *testing.T) *Poller {
	t.Helper()
	p, err := NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestPoller follows a socket through the set: quiet while nothing comes,
// reported once when bytes come, reported at once when added with bytes
// waiting, not reported once deleted, and reported on EOF.
func TestPoller(t *testing.T) {
	p := newPoller(t)
	a, b := tcpPair(t)
	fd := FD(b)
	if err := p.Add(fd); err != nil {
		t.Fatal(err)
	}
	wantQuiet(t, p, "nothing sent")
	a.Write([]byte("x"))
	wantReported(t, p, fd, "bytes sent")
	wantQuiet(t, p, "reported once (one-shot), bytes unread")
	if err := p.Delete(fd); err != nil {
		t.Fatal(err)
	}
	if err := p.Add(fd); err != nil {
		t.Fatal(err)
	}
	wantReported(t, p, fd, "added again with a byte waiting")
	if err := p.Delete(fd); err != nil {
		t.Fatal(err)
	}
	b.Read(make([]byte, 1))
	if err := p.Add(fd); err != nil {
		t.Fatal(err)
	}
	if err := p.Delete(fd); err != nil {
		t.Fatal(err)
	}
	a.Write([]byte("y"))
	wantQuiet(t, p, "deleted")
	if err := p.Delete(fd); err == nil {
		t.Fatal("Delete of a socket not in the set: no error")
	}
	b.Read(make([]byte, 1))
	if err := p.Add(fd); err != nil {
		t.Fatal(err)
	}
	a.Close()
	wantReported(t, p, fd, "peer closed")
}

// TestPollerMany checks that a Wait reports every socket that turned
// readable, and that a socket added while another goroutine waits is
// reported to it.
func TestPollerMany(t *testing.T) {
	p := newPoller(t)
	var peers []interface{ Write([]byte) (int, error) }
	var want []int
	for range 5 {
		a, b := tcpPair(t)
		fd := FD(b)
		if err := p.Add(fd); err != nil {
			t.Fatal(err)
		}
		peers = append(peers, a)
		want = append(want, fd)
	}
	for _, a := range peers {
		a.Write([]byte("x"))
	}
	var got []int
	for len(got) < len(want) {
		fds, err := waitFor(t, p, time.Second)
		if err != nil {
			t.Fatalf("after %v of %v: %v", got, want, err)
		}
		got = append(got, fds...)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("reported %v, want %v", got, want)
	}

	a, b := tcpPair(t)
	a.Write([]byte("x"))
	type result struct {
		fds []int
		err error
	}
	done := make(chan result, 1)
	go func() {
		fds := make([]int, 8)
		n, err := p.Wait(fds, time.Now().Add(5*time.Second))
		done <- result{fds[:n], err}
	}()
	time.Sleep(20 * time.Millisecond) // let it wait
	if err := p.Add(FD(b)); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.err != nil || !slices.Equal(r.fds, []int{FD(b)}) {
		t.Fatalf("added during a wait: reported %v, %v; want [%d]", r.fds, r.err, FD(b))
	}
}

// TestPollerClose checks that closing the set ends a wait with
// os.ErrClosed.
func TestPollerClose(t *testing.T) {
	p, err := NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := p.Wait(make([]int, 8), time.Now().Add(10*time.Second))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	p.Close()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("wait on a closed set: %v, want os.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("closing the set did not end the wait")
	}
	if _, err := p.Wait(make([]int, 8), time.Now().Add(time.Second)); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("wait after close: %v, want os.ErrClosed", err)
	}
}

// TestPollerWaitAllocs checks that a wait allocates nothing.
func TestPollerWaitAllocs(t *testing.T) {
	p := newPoller(t)
	fds := make([]int, 8)
	p.Wait(fds, time.Now()) // the events grow once
	if n := testing.AllocsPerRun(100, func() { p.Wait(fds, time.Now()) }); n != 0 {
		t.Errorf("Wait: %v allocations, want 0", n)
	}
}

// TestPollerCtlAllocs checks that putting a socket in the set, re-arming
// it and taking it out allocate nothing: an event loop re-arms a client
// after every batch.
func TestPollerCtlAllocs(t *testing.T) {
	p := newPoller(t)
	_, b := tcpPair(t)
	fd := FD(b)
	if err := p.Add(fd); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if err := p.Rearm(fd); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Rearm: %v allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		p.Delete(fd)
		p.Add(fd)
	}); n != 0 {
		t.Errorf("Delete and Add: %v allocations, want 0", n)
	}
	fds := make([]int, 4)
	if n := testing.AllocsPerRun(100, func() {
		p.Poll(fds)
	}); n != 0 {
		t.Errorf("Poll: %v allocations, want 0", n)
	}
}

// TestPollerPoll: Poll reports what is ready now and never waits.
func TestPollerPoll(t *testing.T) {
	p := newPoller(t)
	a, b := tcpPair(t)
	fd := FD(b)
	if err := p.Add(fd); err != nil {
		t.Fatal(err)
	}
	fds := make([]int, 4)
	start := time.Now()
	if n, err := p.Poll(fds); n != 0 || err != nil {
		t.Fatalf("nothing sent: Poll = %d, %v; want 0, nil", n, err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("Poll waited %v", d)
	}
	a.Write([]byte("x"))
	deadline := time.Now().Add(time.Second)
	n, err := 0, error(nil)
	for n == 0 && err == nil && time.Now().Before(deadline) {
		n, err = p.Poll(fds)
	}
	if err != nil || n != 1 || fds[0] != fd {
		t.Fatalf("bytes sent: Poll = %v, %v; want [%d]", fds[:n], err, fd)
	}
	if n, err := p.Poll(fds); n != 0 || err != nil {
		t.Fatalf("reported once (one-shot): Poll = %d, %v; want 0, nil", n, err)
	}
	p.Close()
	if _, err := p.Poll(fds); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("closed: Poll err = %v, want os.ErrClosed", err)
	}
}
