package proxytest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"
)

// The bad-input harness of both protocols: each case is malformed or
// hostile input with the exact answer the proxy must give and how the
// exchange ends; cases marked same are run against the real server too, to
// show the expectation is that server's own behaviour. Around each case,
// clients connected all along and a new client must be served.

// badEnd says how a bad-input exchange ends.
type badEnd int

const (
	// EndClose: the reply, then the server closes the connection.
	EndClose badEnd = iota
	// EndOpen: the reply, then the connection serves a further request.
	EndOpen
	// EndHold: the reply (usually none), then nothing more: the connection
	// stays open, waiting for the rest.
	EndHold
	// EndHangup: the client sends the input and closes its side; the
	// server sends the reply (usually none) and closes.
	EndHangup
)

// BadCase is one malformed or hostile input.
type BadCase struct {
	Name string
	In   []byte
	Want string // exact bytes before the end (see readLike)
	End  badEnd
	// Cont is sent after the reply: for EndOpen at once, for EndHold (the
	// rest of the request) once the other clients were checked. contWant
	// is the exact answer, after which the connection serves a follow-up
	// request, or closes if contClose. For EndHold, a nil Cont just hangs
	// up.
	Cont      []byte
	ContWant  string
	ContClose bool
	// Same: the real server answers exactly so (checked against it too).
	Same bool
	// bug, when set, names a known proxy bug this case shows: the case is
	// skipped with that note while it fails, and fails once it passes, so
	// that the note is removed with the fix.
	bug string
}

// BadProto is how a protocol's follow-up and bystander checks look.
type BadProto struct {
	Follow, FollowWant string // a request any open connection answers so
	// Bystander writes a value made of i under key and reads it back over
	// c, a connection open all along; it returns an error if the replies
	// are wrong.
	Bystander func(c *Conn, key string, i int) error
}

// Repeat returns s repeated to n bytes.
func Repeat(s string, n int) []byte { return bytes.Repeat([]byte(s), n/len(s)) }

// RunBadTable runs every case against the proxy at addr and, for the cases
// marked same, against the real server at ref. After each case a client
// connected all along and a new client must be served, and a client busy
// all the while must never notice.
func RunBadTable(t *testing.T, addr, ref string, p BadProto, cases []BadCase) {
	by, err := TryDial(t, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer by.Net.Close()
	busy, err := TryDial(t, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Net.Close()
	stop, busyErr := make(chan struct{}), make(chan error, 1)
	go func() { busyErr <- busyBystander(busy, p, stop) }()
	for i, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			err := runBadCase(t, addr, by, p, c, i)
			if c.Same {
				checkReference(t, ref, c, p)
			}
			switch {
			case c.bug != "" && err != nil:
				t.Skipf("BUG: %s: %v", c.bug, err)
			case c.bug != "":
				t.Errorf("this case passes now: remove its bug note %q", c.bug)
			case err != nil:
				t.Errorf("proxy: %v", err)
			}
		})
	}
	close(stop)
	if err := <-busyErr; err != nil {
		t.Errorf("client busy at the same time: %v", err)
	}
}

// busyBystander runs p's bystander over c until stop is closed, and reports
// the first wrong answer.
func busyBystander(c *Conn, p BadProto, stop <-chan struct{}) error {
	for i := 0; ; i++ {
		select {
		case <-stop:
			if i < 10 {
				return fmt.Errorf("only %d round trips", i)
			}
			return nil
		default:
		}
		if err := p.Bystander(c, "bystander:busy", i); err != nil {
			return fmt.Errorf("round %d: %w", i, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runBadCase runs one case against the proxy and checks the other
// clients meanwhile; it returns how the proxy's answer was wrong.
func runBadCase(t *testing.T, addr string, by *Conn, p BadProto, c BadCase, i int) error {
	t.Helper()
	held, err := runBad(t, addr, c, p)
	checkOthers(t, addr, by, p, i)
	if held != nil {
		err = finishHold(held, c, p)
	}
	return err
}

// runBad sends c's input to addr and checks the reply and how the
// exchange ends. For EndHold it returns the held connection, else nil.
func runBad(t *testing.T, addr string, c BadCase, p BadProto) (*Conn, error) {
	rc, err := TryDial(t, addr)
	if err != nil {
		return nil, err
	}
	rc.Net.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, werr := rc.Net.Write(c.In) // a server that closes early may refuse the rest
	if c.End == EndHangup {
		rc.Net.(*net.TCPConn).CloseWrite()
	}
	if err := checkEnd(rc, c, p, werr); err != nil {
		rc.Net.Close()
		return nil, err
	}
	if c.End == EndHold {
		return rc, nil
	}
	rc.Net.Close()
	return nil, nil
}

// checkEnd reads the reply and checks the end of the exchange.
func checkEnd(rc *Conn, c BadCase, p BadProto, werr error) error {
	switch c.End {
	case EndClose, EndHangup:
		got, err := rc.ReadToEOF(5 * time.Second)
		if err != nil || got != c.Want {
			return fmt.Errorf("got %q (%v; write: %v), want %q and a close", Short(got), err, werr, Short(c.Want))
		}
	case EndOpen:
		if werr != nil {
			return fmt.Errorf("write: %w", werr)
		}
		if got, err := rc.readLike(c.Want, 2*time.Second); got != c.Want {
			return fmt.Errorf("got %q (%v), want %q", Short(got), err, Short(c.Want))
		}
		if c.Cont != nil {
			if err := rc.Exchange(string(c.Cont), c.ContWant); err != nil {
				return fmt.Errorf("then: %w", err)
			}
		}
		if err := rc.Exchange(p.Follow, p.FollowWant); err != nil {
			return fmt.Errorf("after the reply: %w", err)
		}
	case EndHold:
		if got, err := rc.readLike(c.Want, 5*time.Second); got != c.Want {
			return fmt.Errorf("got %q (%v), want %q", Short(got), err, Short(c.Want))
		}
		got, err := rc.readN(1, 300*time.Millisecond)
		if got != "" || !errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("want nothing more and an open connection, got %q (%v; write: %v)", got, err, werr)
		}
	}
	return nil
}

// finishHold sends the rest of a held request and checks the answer.
func finishHold(rc *Conn, c BadCase, p BadProto) error {
	defer rc.Net.Close()
	if c.Cont == nil {
		return nil
	}
	rc.Net.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := rc.Net.Write(c.Cont); err != nil {
		return fmt.Errorf("write the rest: %w", err)
	}
	if c.ContClose {
		got, err := rc.ReadToEOF(5 * time.Second)
		if err != nil || got != c.ContWant {
			return fmt.Errorf("after the rest: got %q (%v), want %q and a close", Short(got), err, Short(c.ContWant))
		}
		return nil
	}
	if got, err := rc.readLike(c.ContWant, 5*time.Second); got != c.ContWant {
		return fmt.Errorf("after the rest: got %q (%v), want %q", Short(got), err, Short(c.ContWant))
	}
	return rc.Exchange(p.Follow, p.FollowWant)
}

// checkOthers checks the bystander and a new connection.
func checkOthers(t *testing.T, addr string, by *Conn, p BadProto, i int) {
	t.Helper()
	if err := p.Bystander(by, "bystander", i); err != nil {
		t.Errorf("client connected all along: %v", err)
	}
	nc, err := TryDial(t, addr)
	if err != nil {
		t.Fatalf("new connection: %v", err)
	}
	defer nc.Net.Close()
	if err := nc.Exchange(p.Follow, p.FollowWant); err != nil {
		t.Errorf("new connection: %v", err)
	}
}

// checkReference runs the case against the real server, to show that the
// expectation is that server's own behaviour.
func checkReference(t *testing.T, ref string, c BadCase, p BadProto) {
	t.Helper()
	held, err := runBad(t, ref, c, p)
	if err == nil && held != nil {
		err = finishHold(held, c, p)
	}
	if err != nil {
		t.Errorf("the real server differs from the expectation: %v", err)
	}
}
