//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// connectLoad is the load an upgrade is tested under: workers that each
// connect, run INCR, SET and GET on keys of their own a few times, close,
// and connect again, so that connects and requests are under way while
// the processes change. It counts connects refused and checks every reply.
//
// A connection the proxy closes (a draining process closes each client
// after the replies to the requests it read) may take with it a request
// the proxy never read: the worker sees the connection end before any byte
// of the reply, counts the request as closedUnanswered and runs it again
// on a new connection, as a client library does. Whether it had run is
// told by the INCR that follows: its counter must have moved by one, not
// two; a request that ran and got no reply is an error (lost).
type connectLoad struct {
	addr string
	quit chan struct{}
	wg   sync.WaitGroup

	connects, refused, requests, closedUnanswered atomic.Int64

	mu   sync.Mutex
	errs []string // wrong replies, lost requests, other failures
}

// startConnectLoad starts n workers on addr; their keys begin with prefix.
func startConnectLoad(t *testing.T, addr, prefix string, n int) *connectLoad {
	l := &connectLoad{addr: addr, quit: make(chan struct{})}
	for w := range n {
		l.wg.Add(1)
		go l.worker(fmt.Sprintf("%s:%d", prefix, w))
	}
	t.Cleanup(l.stop)
	return l
}

// stop ends the workers and waits for them.
func (l *connectLoad) stop() {
	select {
	case <-l.quit:
	default:
		close(l.quit)
	}
	l.wg.Wait()
}

// failures returns the errors seen, at most the first ten.
func (l *connectLoad) failures() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.errs[:min(len(l.errs), 10)]
}

func (l *connectLoad) fail(format string, args ...any) {
	l.mu.Lock()
	l.errs = append(l.errs, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

// String sums the load up for the test's log.
func (l *connectLoad) String() string {
	return fmt.Sprintf("%d connects (%d refused), %d requests answered, %d closed unanswered and run again, %d errors",
		l.connects.Load(), l.refused.Load(), l.requests.Load(), l.closedUnanswered.Load(), len(l.errs))
}

// errClosed is a connection that ended before any byte of a reply.
var errClosed = errors.New("connection closed before the reply")

// worker runs one worker on the keys key (its counter) and key:s until
// quit, five rounds of INCR, SET, GET per connection.
func (l *connectLoad) worker(key string) {
	defer l.wg.Done()
	count := 0      // the counter's value, as the worker knows it
	unsure := false // an INCR went unanswered: it may not have run
	var c net.Conn  // nil between connections
	var r *bufio.Reader
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	for round := 0; ; round++ {
		select {
		case <-l.quit:
			return
		default:
		}
		if c == nil {
			var err error
			l.connects.Add(1)
			if c, err = net.DialTimeout("tcp", l.addr, 5*time.Second); err != nil {
				if errors.Is(err, syscall.ECONNREFUSED) {
					l.refused.Add(1)
				} else {
					l.fail("%s: connect: %v", key, err)
				}
				c = nil
				time.Sleep(10 * time.Millisecond)
				continue
			}
			r = bufio.NewReader(c)
		}
		err := l.round(c, r, key, round, &count, &unsure)
		if errors.Is(err, errClosed) {
			l.closedUnanswered.Add(1)
		} else if err != nil {
			l.fail("%s: %v", key, err)
		}
		if err != nil || round%5 == 4 {
			c.Close()
			c = nil
		}
	}
}

// round runs INCR key, SET key:s value, GET key:s on c.
func (l *connectLoad) round(c net.Conn, r *bufio.Reader, key string, round int, count *int, unsure *bool) error {
	got, err := l.do(c, r, "INCR", key)
	if err != nil {
		if errors.Is(err, errClosed) {
			*unsure = true
		}
		return err
	}
	n, _ := strconv.Atoi(strings.TrimPrefix(got, ":"))
	switch {
	case got == ":"+strconv.Itoa(*count+1):
	case *unsure && got == ":"+strconv.Itoa(*count+2):
		*count = n
		*unsure = false
		return fmt.Errorf("INCR: the unanswered INCR had run: a request lost its reply (counter at %d)", n)
	default:
		return fmt.Errorf("INCR: %q, want :%d", got, *count+1)
	}
	*count, *unsure = n, false
	value := fmt.Sprintf("%s-%d", key, round)
	if got, err := l.do(c, r, "SET", key+":s", value); err != nil || got != "+OK" {
		return orWrong(err, "SET", got, "+OK")
	}
	if got, err := l.do(c, r, "GET", key+":s"); err != nil || got != value {
		return orWrong(err, "GET", got, value)
	}
	return nil
}

// orWrong is err, or else a wrong reply.
func orWrong(err error, cmd, got, want string) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("%s: %q, want %q", cmd, got, want)
}

// do sends a command and reads its reply: a status, an error or an
// integer line, or a bulk string's content. errClosed when the connection
// ended before any byte of the reply.
func (l *connectLoad) do(c net.Conn, r *bufio.Reader, args ...string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, b.String()); err != nil {
		if closedByPeer(err) {
			return "", errClosed
		}
		return "", fmt.Errorf("%s: write: %w", args[0], err)
	}
	line, err := r.ReadString('\n')
	switch {
	case err != nil && line == "" && closedByPeer(err):
		return "", errClosed
	case err != nil:
		return "", fmt.Errorf("%s: reply %q: %w", args[0], line, err)
	}
	line = strings.TrimSuffix(line, "\r\n")
	if !strings.HasPrefix(line, "$") {
		l.requests.Add(1)
		return line, nil
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil || n < 0 {
		return "", fmt.Errorf("%s: reply %q", args[0], line)
	}
	body := make([]byte, n+2)
	if _, err := io.ReadFull(r, body); err != nil {
		return "", fmt.Errorf("%s: a bulk reply cut short: %w", args[0], err)
	}
	l.requests.Add(1)
	return string(body[:n]), nil
}

// closedByPeer tells a connection the other end closed (EOF, reset,
// broken pipe) from other errors, a timeout among them.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
