package proxy_test

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
	// endClose: the reply, then the server closes the connection.
	endClose badEnd = iota
	// endOpen: the reply, then the connection serves a further request.
	endOpen
	// endHold: the reply (usually none), then nothing more: the connection
	// stays open, waiting for the rest.
	endHold
	// endHangup: the client sends the input and closes its side; the
	// server sends the reply (usually none) and closes.
	endHangup
)

// badCase is one malformed or hostile input.
type badCase struct {
	name string
	in   []byte
	want string // exact bytes before the end (see readLike)
	end  badEnd
	// cont is sent after the reply: for endOpen at once, for endHold (the
	// rest of the request) once the other clients were checked. contWant
	// is the exact answer, after which the connection serves a follow-up
	// request, or closes if contClose. For endHold, a nil cont just hangs
	// up.
	cont      []byte
	contWant  string
	contClose bool
	// same: the real server answers exactly so (checked against it too).
	same bool
	// bug, when set, names a known proxy bug this case shows: the case is
	// skipped with that note while it fails, and fails once it passes, so
	// that the note is removed with the fix.
	bug string
}

// badProto is how a protocol's follow-up and bystander checks look.
type badProto struct {
	follow, followWant string // a request any open connection answers so
	// bystander writes a value made of i under key and reads it back over
	// c, a connection open all along; it returns an error if the replies
	// are wrong.
	bystander func(c *clientConn, key string, i int) error
}

// repeat returns s repeated to n bytes.
func repeat(s string, n int) []byte { return bytes.Repeat([]byte(s), n/len(s)) }

// runBadTable runs every case against the proxy at addr and, for the cases
// marked same, against the real server at ref. After each case a client
// connected all along and a new client must be served, and a client busy
// all the while must never notice.
func runBadTable(t *testing.T, addr, ref string, p badProto, cases []badCase) {
	by, err := tryDialClient(t, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer by.nc.Close()
	busy, err := tryDialClient(t, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.nc.Close()
	stop, busyErr := make(chan struct{}), make(chan error, 1)
	go func() { busyErr <- busyBystander(busy, p, stop) }()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := runBadCase(t, addr, by, p, c, i)
			if c.same {
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
func busyBystander(c *clientConn, p badProto, stop <-chan struct{}) error {
	for i := 0; ; i++ {
		select {
		case <-stop:
			if i < 10 {
				return fmt.Errorf("only %d round trips", i)
			}
			return nil
		default:
		}
		if err := p.bystander(c, "bystander:busy", i); err != nil {
			return fmt.Errorf("round %d: %w", i, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runBadCase runs one case against the proxy and checks the other
// clients meanwhile; it returns how the proxy's answer was wrong.
func runBadCase(t *testing.T, addr string, by *clientConn, p badProto, c badCase, i int) error {
	t.Helper()
	held, err := runBad(t, addr, c, p)
	checkOthers(t, addr, by, p, i)
	if held != nil {
		err = finishHold(held, c, p)
	}
	return err
}

// runBad sends c's input to addr and checks the reply and how the
// exchange ends. For endHold it returns the held connection, else nil.
func runBad(t *testing.T, addr string, c badCase, p badProto) (*clientConn, error) {
	rc, err := tryDialClient(t, addr)
	if err != nil {
		return nil, err
	}
	rc.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, werr := rc.nc.Write(c.in) // a server that closes early may refuse the rest
	if c.end == endHangup {
		rc.nc.(*net.TCPConn).CloseWrite()
	}
	if err := checkEnd(rc, c, p, werr); err != nil {
		rc.nc.Close()
		return nil, err
	}
	if c.end == endHold {
		return rc, nil
	}
	rc.nc.Close()
	return nil, nil
}

// checkEnd reads the reply and checks the end of the exchange.
func checkEnd(rc *clientConn, c badCase, p badProto, werr error) error {
	switch c.end {
	case endClose, endHangup:
		got, err := rc.readToEOF(5 * time.Second)
		if err != nil || got != c.want {
			return fmt.Errorf("got %q (%v; write: %v), want %q and a close", short(got), err, werr, short(c.want))
		}
	case endOpen:
		if werr != nil {
			return fmt.Errorf("write: %w", werr)
		}
		if got, err := rc.readLike(c.want, 2*time.Second); got != c.want {
			return fmt.Errorf("got %q (%v), want %q", short(got), err, short(c.want))
		}
		if c.cont != nil {
			if err := rc.exchange(string(c.cont), c.contWant); err != nil {
				return fmt.Errorf("then: %w", err)
			}
		}
		if err := rc.exchange(p.follow, p.followWant); err != nil {
			return fmt.Errorf("after the reply: %w", err)
		}
	case endHold:
		if got, err := rc.readLike(c.want, 5*time.Second); got != c.want {
			return fmt.Errorf("got %q (%v), want %q", short(got), err, short(c.want))
		}
		got, err := rc.readN(1, 300*time.Millisecond)
		if got != "" || !errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("want nothing more and an open connection, got %q (%v; write: %v)", got, err, werr)
		}
	}
	return nil
}

// finishHold sends the rest of a held request and checks the answer.
func finishHold(rc *clientConn, c badCase, p badProto) error {
	defer rc.nc.Close()
	if c.cont == nil {
		return nil
	}
	rc.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := rc.nc.Write(c.cont); err != nil {
		return fmt.Errorf("write the rest: %w", err)
	}
	if c.contClose {
		got, err := rc.readToEOF(5 * time.Second)
		if err != nil || got != c.contWant {
			return fmt.Errorf("after the rest: got %q (%v), want %q and a close", short(got), err, short(c.contWant))
		}
		return nil
	}
	if got, err := rc.readLike(c.contWant, 5*time.Second); got != c.contWant {
		return fmt.Errorf("after the rest: got %q (%v), want %q", short(got), err, short(c.contWant))
	}
	return rc.exchange(p.follow, p.followWant)
}

// checkOthers checks the bystander and a new connection.
func checkOthers(t *testing.T, addr string, by *clientConn, p badProto, i int) {
	t.Helper()
	if err := p.bystander(by, "bystander", i); err != nil {
		t.Errorf("client connected all along: %v", err)
	}
	nc, err := tryDialClient(t, addr)
	if err != nil {
		t.Fatalf("new connection: %v", err)
	}
	defer nc.nc.Close()
	if err := nc.exchange(p.follow, p.followWant); err != nil {
		t.Errorf("new connection: %v", err)
	}
}

// checkReference runs the case against the real server, to show that the
// expectation is that server's own behaviour.
func checkReference(t *testing.T, ref string, c badCase, p badProto) {
	t.Helper()
	held, err := runBad(t, ref, c, p)
	if err == nil && held != nil {
		err = finishHold(held, c, p)
	}
	if err != nil {
		t.Errorf("the real server differs from the expectation: %v", err)
	}
}
