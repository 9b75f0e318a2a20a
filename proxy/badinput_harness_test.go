package proxy_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// ftEnd says how a bad-input exchange ends.
type ftEnd int

const (
	// ftClose: the reply, then the server closes the connection.
	ftClose ftEnd = iota
	// ftOpen: the reply, then the connection serves a further request.
	ftOpen
	// ftHold: the reply (usually none), then nothing more: the connection
	// stays open, waiting for the rest.
	ftHold
	// ftHangup: the client sends the input and closes its side; the
	// server sends the reply (usually none) and closes.
	ftHangup
)

// ftBadCase is one malformed or hostile input.
type ftBadCase struct {
	name string
	in   []byte
	want string // exact bytes before the end
	end  ftEnd
	// For ftHold: cont is sent once the others were checked, and contWant
	// is the exact answer, after which the connection serves a follow-up
	// request, or closes if contClose. A nil cont just hangs up.
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

// ftProto is how a protocol's follow-up and bystander checks look.
type ftProto struct {
	follow, followWant string // a request any open connection answers so
	// bystander runs a correct exchange on a connection open all along
	// and returns an error if its replies are wrong.
	bystander func(c *ftRawConn, i int) error
}

// ftRawConn is a connection for exact-byte exchanges.
type ftRawConn struct{ nc net.Conn }

func ftDialRaw(addr string) (*ftRawConn, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &ftRawConn{nc: nc}, nil
}

// readN reads exactly n bytes within d; it returns what came and why it
// stopped early.
func (c *ftRawConn) readN(n int, d time.Duration) (string, error) {
	c.nc.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, n)
	m, err := io.ReadFull(c.nc, buf)
	return string(buf[:m]), err
}

// readToEOF reads until the peer closes, within d. A reset counts as a
// close.
func (c *ftRawConn) readToEOF(d time.Duration) (string, error) {
	c.nc.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(c.nc)
	if err != nil && ftIsReset(err) {
		err = nil
	}
	return string(b), err
}

func ftIsReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

// exchange sends request and expects exactly want back.
func (c *ftRawConn) exchange(request, want string) error {
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Write([]byte(request)); err != nil {
		return fmt.Errorf("write %q: %w", request, err)
	}
	got, err := c.readN(len(want), 5*time.Second)
	if got != want {
		return fmt.Errorf("%q: got %q (%v), want %q", ftShort(request), ftShort(got), err, ftShort(want))
	}
	return nil
}

// ftShort clips long strings in messages.
func ftShort(s string) string {
	if len(s) > 120 {
		return fmt.Sprintf("%s...(%d bytes)", s[:120], len(s))
	}
	return s
}

// ftRunBad sends c's input to addr and checks the reply and how the
// exchange ends. For ftHold it returns the held connection, else nil.
func ftRunBad(addr string, c ftBadCase, p ftProto) (*ftRawConn, error) {
	rc, err := ftDialRaw(addr)
	if err != nil {
		return nil, err
	}
	rc.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, werr := rc.nc.Write(c.in) // a server that closes early may refuse the rest
	if c.end == ftHangup {
		rc.nc.(*net.TCPConn).CloseWrite()
	}
	if err := ftCheckEnd(rc, c, p, werr); err != nil {
		rc.nc.Close()
		return nil, err
	}
	if c.end == ftHold {
		return rc, nil
	}
	rc.nc.Close()
	return nil, nil
}

// ftCheckEnd reads the reply and checks the end of the exchange.
func ftCheckEnd(rc *ftRawConn, c ftBadCase, p ftProto, werr error) error {
	switch c.end {
	case ftClose, ftHangup:
		got, err := rc.readToEOF(5 * time.Second)
		if err != nil || got != c.want {
			return fmt.Errorf("got %q (%v; write: %v), want %q and a close", ftShort(got), err, werr, ftShort(c.want))
		}
	case ftOpen:
		if werr != nil {
			return fmt.Errorf("write: %w", werr)
		}
		if got, err := rc.readN(len(c.want), 2*time.Second); got != c.want {
			return fmt.Errorf("got %q (%v), want %q", ftShort(got), err, ftShort(c.want))
		}
		if err := rc.exchange(p.follow, p.followWant); err != nil {
			return fmt.Errorf("after the reply: %w", err)
		}
	case ftHold:
		if got, err := rc.readN(len(c.want), 5*time.Second); got != c.want {
			return fmt.Errorf("got %q (%v), want %q", ftShort(got), err, ftShort(c.want))
		}
		got, err := rc.readN(1, 300*time.Millisecond)
		if got != "" || !errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("want nothing more and an open connection, got %q (%v; write: %v)", got, err, werr)
		}
	}
	return nil
}

// ftFinishHold sends the rest of a held request and checks the answer.
func ftFinishHold(rc *ftRawConn, c ftBadCase, p ftProto) error {
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
			return fmt.Errorf("after the rest: got %q (%v), want %q and a close", ftShort(got), err, ftShort(c.contWant))
		}
		return nil
	}
	if got, err := rc.readN(len(c.contWant), 5*time.Second); got != c.contWant {
		return fmt.Errorf("after the rest: got %q (%v), want %q", ftShort(got), err, ftShort(c.contWant))
	}
	return rc.exchange(p.follow, p.followWant)
}

// ftRunBadTable runs every case against the proxy at addr and, for the
// cases marked same, against the real server at ref. After each case a
// client connected all along and a new client must still be served.
func ftRunBadTable(t *testing.T, addr, ref string, p ftProto, cases []ftBadCase) {
	by, err := ftDialRaw(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer by.nc.Close()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := ftRunBadCase(t, addr, by, p, c, i)
			if c.same {
				ftCheckReference(t, ref, c, p)
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
}

// ftRunBadCase runs one case against the proxy and checks the other
// clients meanwhile; it returns how the proxy's answer was wrong.
func ftRunBadCase(t *testing.T, addr string, by *ftRawConn, p ftProto, c ftBadCase, i int) error {
	t.Helper()
	held, err := ftRunBad(addr, c, p)
	ftCheckOthers(t, addr, by, p, i)
	if held != nil {
		err = ftFinishHold(held, c, p)
	}
	return err
}

// ftCheckOthers checks the bystander and a new connection.
func ftCheckOthers(t *testing.T, addr string, by *ftRawConn, p ftProto, i int) {
	t.Helper()
	if err := p.bystander(by, i); err != nil {
		t.Errorf("client connected all along: %v", err)
	}
	nc, err := ftDialRaw(addr)
	if err != nil {
		t.Fatalf("new connection: %v", err)
	}
	defer nc.nc.Close()
	if err := nc.exchange(p.follow, p.followWant); err != nil {
		t.Errorf("new connection: %v", err)
	}
}

// ftCheckReference runs the case against the real server, to show that
// the expectation is that server's own behaviour.
func ftCheckReference(t *testing.T, ref string, c ftBadCase, p ftProto) {
	t.Helper()
	held, err := ftRunBad(ref, c, p)
	if err == nil && held != nil {
		err = ftFinishHold(held, c, p)
	}
	if err != nil {
		t.Errorf("the real server differs from the expectation: %v", err)
	}
}

// ftRepeat returns s repeated to n bytes.
func ftRepeat(s string, n int) []byte { return bytes.Repeat([]byte(s), n/len(s)) }
