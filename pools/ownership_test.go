package pools_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/internal/sockio"
	"github.com/shardproxy/shardproxy/pools"
)

// These tests pin down when a buffer changes owner between a server
// connection and its clients: a client told its call is done may reuse
// every buffer the call references at once, so the connection must be done
// with them before it tells.

// scriptedServer accepts one connection and, for every n requests it
// frames, answers with reply in one write. It is a stand-in only for the
// byte order a real server may produce in one write, which a real Redis
// does not produce on demand.
func scriptedServer(t *testing.T, n int, reply []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		br := bufio.NewReader(nc)
		var buf []byte
		for {
			for i := 0; i < n; i++ {
				if _, err := readRequest(br, &buf); err != nil {
					return
				}
			}
			if _, err := nc.Write(reply); err != nil {
				return
			}
		}
	}()
	return ln.Addr().String()
}

// readRequest reads one RESP request from br, keeping what follows it in
// *buf.
func readRequest(br *bufio.Reader, buf *[]byte) (int, error) {
	var req resp.Request
	for {
		if n, err := resp.ReadRequest(*buf, &req, resp.Limits{}); err == nil && n > 0 {
			*buf = (*buf)[:copy(*buf, (*buf)[n:])]
			return n, nil
		} else if err != nil {
			return 0, err
		}
		b := make([]byte, 4096)
		k, err := br.Read(b)
		if err != nil {
			return 0, err
		}
		*buf = append(*buf, b[:k]...)
	}
}

// bigArray is a RESP array reply of about 70 KB: an MGET-shaped reply,
// whose size the reader cannot know before it has all of it.
func bigArray() []byte {
	var b []byte
	b = append(b, "*70\r\n"...)
	v := strings.Repeat("v", 1000)
	for range 70 {
		b = append(b, fmt.Sprintf("$%d\r\n%s\r\n", len(v), v)...)
	}
	return b
}

// scribbler resets each call when told and fills a fresh buffer of the same
// size class with X, as a client reusing its buffers does; it records
// every reply it saw before the reset.
type scribbler struct {
	mu      sync.Mutex
	replies map[*pools.Call]string
	async   bool
	wg      sync.WaitGroup
	done    chan struct{}
}

func (s *scribbler) CallDone(c *pools.Call) {
	s.mu.Lock()
	s.replies[c] = string(c.Reply)
	s.mu.Unlock()
	work := func() {
		size := cap(c.Reply)
		c.Reset(64 << 10)
		b := sockio.GetBuffer(size)
		b = b[:cap(b)]
		for i := range b {
			b[i] = 'X'
		}
		sockio.PutBuffer(b)
		s.done <- struct{}{}
	}
	if s.async {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); work() }()
		return
	}
	work()
}

func TestLargeReplyBufferOwnership(t *testing.T) {
	want := bigArray()
	reply := append(append([]byte{}, want...), "$5\r\nhello\r\n"...)
	for _, async := range []bool{false, true} {
		t.Run(fmt.Sprintf("async=%v", async), func(t *testing.T) {
			addr := scriptedServer(t, 2, reply)
			s := pools.NewServer(redisOptions(addr))
			defer s.Close()
			rounds := 300
			if !async {
				rounds = 50
			}
			sc := &scribbler{async: async, done: make(chan struct{}, 2), replies: map[*pools.Call]string{}}
			var order []*pools.Call
			for round := 0; round < rounds; round++ {
				c := s.Conn(0)
				calls := []*pools.Call{
					{Frame: command("MGET", "a"), Done: sc},
					{Frame: command("GET", "b"), Done: sc},
				}
				// The server answers only once it has both requests:
				// they must go in one write. Without the hold, the
				// reader still telling the last round's calls may write
				// the first alone (a real server answers it, and the
				// second follows with its reply).
				s.Hold()
				for _, call := range calls {
					order = append(order, call)
					c.Enqueue(call)
				}
				c.Flush()
				s.Release()
				for range 2 {
					select {
					case <-sc.done:
					case <-time.After(10 * time.Second):
						buf := make([]byte, 1<<20)
						t.Fatalf("round %d: calls not done:\n%s", round, buf[:runtime.Stack(buf, true)])
					}
				}
			}
			sc.wg.Wait()
			bad := 0
			for i, call := range order {
				r := sc.replies[call]
				exp := string(want)
				if i%2 == 1 {
					exp = "$5\r\nhello\r\n"
				}
				if r != exp {
					bad++
					if bad < 3 {
						t.Errorf("reply %d: got %.40q..., want %.40q...", i, r, exp)
					}
				}
			}
			if bad > 0 {
				t.Fatalf("%d of %d replies wrong", bad, len(order))
			}
		})
	}
}

// TestPinnedFrameOutlivesEarlyReply: a server may answer a request before
// it has read all of it (Redis answers a request over its size limit with
// an error at once). A large frame is written from the client's buffer
// where it lies, so the client must not be told before the write has
// returned, or it would reuse the buffer while the writer still reads it.
func TestPinnedFrameOutlivesEarlyReply(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const size = 4 << 20
	value := bytes.Repeat([]byte("v"), size)
	frame := command("SET", "k", string(value))
	got := make(chan []byte, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer nc.Close()
		head := make([]byte, 64)
		if _, err := io.ReadFull(nc, head); err != nil {
			got <- nil
			return
		}
		// Answer early, then read the rest slowly.
		nc.Write([]byte("-ERR early\r\n"))
		time.Sleep(100 * time.Millisecond)
		rest := make([]byte, len(frame)-len(head))
		io.ReadFull(nc, rest)
		got <- append(head, rest...)
	}()
	s := pools.NewServer(redisOptions(ln.Addr().String()))
	defer s.Close()
	w := &scribbleFrame{frame: frame, done: make(chan struct{})}
	c := s.Conn(0)
	c.Enqueue(&pools.Call{Frame: frame, Done: w})
	c.Flush()
	select {
	case <-w.done:
	case <-time.After(10 * time.Second):
		t.Fatal("call not done")
	}
	recv := <-got
	if n := bytes.Count(recv, []byte("X")); n > 0 {
		t.Fatalf("the server received %d bytes the client wrote into its buffer after it was told the call was done", n)
	}
}

// scribbleFrame overwrites the frame's buffer when told, as a client
// reusing its read buffer does.
type scribbleFrame struct {
	frame []byte
	done  chan struct{}
}

func (s *scribbleFrame) CallDone(*pools.Call) {
	for i := range s.frame {
		s.frame[i] = 'X'
	}
	close(s.done)
}
