//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/shardproxy/shardproxy/codec/resp"
)

// maxFrame bounds one reply a frameReader takes: the apps section's
// replies are a few dozen bytes.
const maxFrame = 1 << 20

// frameReader frames the replies that arrive on a connection with
// codec/resp, without decoding them: the apps section's clients compare
// each reply with the bytes they expect.
type frameReader struct {
	conn       net.Conn
	buf        []byte // buf[start:end] is read and not yet framed
	start, end int
}

func newFrameReader(conn net.Conn) *frameReader {
	return &frameReader{conn: conn, buf: make([]byte, 64<<10)}
}

// next returns the next reply, reading as needed. The bytes are valid until
// the following call.
func (r *frameReader) next() ([]byte, error) {
	for {
		f, err := r.buffered()
		if err != nil || f != nil {
			return f, err
		}
		if err := r.fill(); err != nil {
			return nil, err
		}
	}
}

// buffered returns the next reply if it has arrived whole, nil if not.
func (r *frameReader) buffered() ([]byte, error) {
	n, err := resp.ReadReply(r.buf[r.start:r.end])
	if err != nil {
		return nil, fmt.Errorf("reply %q: %w", resp.Clip(r.buf[r.start:r.end]), err)
	}
	if n == 0 {
		return nil, nil
	}
	f := r.buf[r.start : r.start+n]
	r.start += n
	return f, nil
}

// fill reads more bytes after those not yet framed, which it first moves to
// the front of the buffer.
func (r *frameReader) fill() error {
	if r.start > 0 {
		r.end = copy(r.buf, r.buf[r.start:r.end])
		r.start = 0
	}
	if r.end == len(r.buf) {
		if len(r.buf) >= maxFrame {
			return fmt.Errorf("reply longer than %d bytes", maxFrame)
		}
		r.buf = append(r.buf, make([]byte, len(r.buf))...)
	}
	n, err := r.conn.Read(r.buf[r.end:])
	r.end += n
	switch {
	case n > 0:
		return nil
	case errors.Is(err, io.EOF) && r.end > 0:
		return io.ErrUnexpectedEOF
	case err != nil:
		return err
	}
	return io.ErrNoProgress
}

// expect reads the next reply and fails unless it is want.
func (r *frameReader) expect(what string, want []byte) error {
	f, err := r.next()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if string(f) != string(want) {
		return fmt.Errorf("%s: got %q, want %q", what, resp.Clip(f), resp.Clip(want))
	}
	return nil
}

// command encodes one command.
func command(args ...string) []byte {
	b := make([][]byte, len(args))
	for i, a := range args {
		b[i] = []byte(a)
	}
	return resp.AppendCommand(nil, b...)
}

// appRun numbers the apps section's runs, so that each uses channels and
// keys of its own and a failed run leaves nothing in the next one's way.
var appRun atomic.Int64

// dialAll opens n connections to addr.
func dialAll(ctx context.Context, addr string, n int) ([]net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			closeAll(conns)
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		conns = append(conns, c)
	}
	return conns, nil
}

// failOnce keeps the first error of a run's goroutines and closes the run's
// connections then, so that every goroutine blocked on one returns.
type failOnce struct {
	err   atomic.Pointer[error]
	conns []net.Conn
}

func (f *failOnce) fail(err error) {
	if f.err.CompareAndSwap(nil, &err) {
		closeAll(f.conns)
	}
}

func (f *failOnce) failure() error {
	if p := f.err.Load(); p != nil {
		return *p
	}
	return nil
}
