package memcache

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

// sentinel ends every input sent to memcached; its reply "MN\r\n" tells the
// reader that everything before it was answered.
const sentinel = "mn\r\n"

// readUntil reads from c until its output ends with suffix, the connection
// closes, or nothing arrives for a while (memcached is swallowing bytes).
func readUntil(c net.Conn, out []byte, suffix string) ([]byte, bool) {
	buf := make([]byte, 64<<10)
	for !bytes.HasSuffix(out, []byte(suffix)) {
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return out, false
		}
		if err != nil {
			return out, true
		}
	}
	return out, false
}

// dial connects to addr or fails the test.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// direct sends in to memcached (the first split bytes alone, when split > 0,
// so that memcached sees an unfinished line) and returns what it answered and
// whether it closed the connection.
func direct(t *testing.T, addr string, in []byte, split int) ([]byte, bool) {
	c := dial(t, addr)
	if split > 0 {
		c.Write(in[:split])
		time.Sleep(100 * time.Millisecond)
		in = in[split:]
	}
	c.Write(in) // memcached may have closed already; the reader sees it
	out, closed := readUntil(c, nil, "MN\r\n")
	if closed || bytes.Count(in, []byte("mn")) < 2 {
		return out, closed
	}
	// An "mn" in the input also ends in "MN": read on until memcached has
	// been quiet for a moment, so the sentinel's own MN is in too.
	buf := make([]byte, 64<<10)
	for {
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			var ne net.Error
			return out, !(errors.As(err, &ne) && ne.Timeout())
		}
	}
}

// simulate plays a proxy in front of memcached: it frames in with
// ReadRequest, answers refused requests itself as the *Error says, forwards
// every other frame unchanged and frames the reply with ReadReply.
func simulate(t *testing.T, addr string, in []byte) ([]byte, bool) {
	c := dial(t, addr)
	var out, pending []byte
	var req Request
	for len(in) > 0 {
		n, err := ReadRequest(in, &req, Limits{})
		var rerr *Error
		switch {
		case errors.As(err, &rerr):
			if !rerr.NoReply {
				out = AppendLine(out, rerr.Reply)
			}
			if rerr.Close {
				return out, true
			}
			in = in[n:]
			in = in[min(rerr.Swallow, len(in)):]
			continue
		case err != nil:
			t.Fatalf("ReadRequest: %v", err)
		case n == 0:
			return out, false // memcached waits for the rest as well
		case req.Cmd == CmdQuit:
			return out, true
		}
		frame := in[:n]
		in = in[n:]
		if req.Quiet {
			frame = append(frame[:n:n], sentinel...) // flush the quiet request's reply, if any
		}
		if _, err := c.Write(frame); err != nil {
			t.Fatal(err)
		}
		if req.NoReply {
			continue
		}
		var reply []byte
		if reply, pending = readReply(t, c, pending, req.Cmd); req.Quiet {
			for string(reply) != "MN\r\n" {
				out = append(out, reply...)
				reply, pending = readReply(t, c, pending, CmdMn)
			}
			continue
		}
		out = append(out, reply...)
	}
	return out, false
}

// readReply reads one reply to cmd from c, pending holding bytes already read.
func readReply(t *testing.T, c net.Conn, pending []byte, cmd Command) (reply, rest []byte) {
	t.Helper()
	buf := make([]byte, 64<<10)
	for {
		n, err := ReadReply(pending, cmd)
		if err != nil {
			t.Fatalf("ReadReply(%q, %v): %v", pending, cmd, err)
		}
		if n > 0 {
			return pending[:n:n], pending[n:]
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		m, err := c.Read(buf)
		if err != nil {
			t.Fatalf("reading a reply to %v after %q: %v", cmd, pending, err)
		}
		pending = append(pending, buf[:m]...)
	}
}

// TestAgainstMemcached sends every request of the tables to a real memcached
// and, through the codec, to a second one, and compares what each answers
// and whether it closes: the codec must frame, refuse and resynchronise
// exactly as memcached does.
func TestAgainstMemcached(t *testing.T) {
	a, b := testservers.Memcached(t), testservers.Memcached(t)
	type run struct {
		name  string
		in    string
		split int
		late  bool
	}
	var runs []run
	for _, tc := range goodRequests {
		if tc.want.cmd != CmdStats { // stats differ between two servers
			runs = append(runs, run{"good/" + tc.name, tc.in, 0, false})
		}
	}
	for _, tc := range malformedRequests {
		if !tc.own {
			runs = append(runs, run{"malformed/" + tc.name, tc.in, tc.split, tc.late})
		}
	}
	runs = append(runs, run{"good/value of MaxValue", "set big 0 0 1048576\r\n" + strings.Repeat("v", 1<<20) + "\r\n", 0, false},
		run{"good/long get", "get" + strings.Repeat(" key", 1000) + "\r\n", 2100, false},
		run{"malformed/long get key 5000", "get " + strings.Repeat("k", 5000) + "\r\n", 3000, false},
		run{"good/pipelined", "set p 0 0 1\r\n1\r\nincr p 5\r\ngets p\r\nmg p v q\r\nmg nope v q\r\ndelete p\r\n", 0, false})
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			in := []byte(r.in + sentinel)
			want, wantClosed := direct(t, a.Addr, in, r.split)
			got, gotClosed := simulate(t, b.Addr, in)
			if r.late && len(want) == 0 && !wantClosed {
				want = []byte(replyTooLarge + "\r\n") // still swallowing: the answer comes after
			}
			if !bytes.Equal(got, want) || gotClosed != wantClosed {
				t.Fatalf("input %.80q\nmemcached: %.200q closed=%v\ncodec:     %.200q closed=%v",
					r.in, want, wantClosed, got, gotClosed)
			}
		})
	}
}

// replyCommands are sent in order to one memcached; each reply is framed.
var replyCommands = []struct {
	name string
	cmd  Command
	in   string
}{
	{"set", CmdSet, "set a 1 0 3\r\nabc\r\n"},
	{"set binary", CmdSet, "set b 2 0 6\r\nEND\r\n\x00\r\n"},
	{"add not stored", CmdAdd, "add a 0 0 1\r\nx\r\n"},
	{"replace", CmdReplace, "replace a 1 0 3\r\nxyz\r\n"},
	{"append", CmdAppend, "append a 0 0 1\r\n!\r\n"},
	{"prepend", CmdPrepend, "prepend a 0 0 1\r\n!\r\n"},
	{"cas not found", CmdCas, "cas nope 0 0 1 1\r\nx\r\n"},
	{"cas exists", CmdCas, "cas a 0 0 1 1\r\nx\r\n"},
	{"get miss", CmdGet, "get nope\r\n"},
	{"get hit", CmdGet, "get a\r\n"},
	{"get many", CmdGet, "get a nope b a\r\n"},
	{"get error", CmdGet, "get " + key251 + "\r\n"},
	{"gets", CmdGets, "gets a b\r\n"},
	{"gat", CmdGat, "gat 100 a b\r\n"},
	{"gats", CmdGats, "gats 100 a\r\n"},
	{"gat error", CmdGat, "gat x a\r\n"},
	{"incr not numeric", CmdIncr, "incr a 1\r\n"},
	{"set counter", CmdSet, "set n 0 0 1\r\n5\r\n"},
	{"incr", CmdIncr, "incr n 10\r\n"},
	{"decr", CmdDecr, "decr n 100\r\n"},
	{"incr miss", CmdIncr, "incr nope 1\r\n"},
	{"touch", CmdTouch, "touch a 100\r\n"},
	{"touch miss", CmdTouch, "touch nope 100\r\n"},
	{"delete", CmdDelete, "delete n\r\n"},
	{"delete miss", CmdDelete, "delete n\r\n"},
	{"version", CmdVersion, "version\r\n"},
	{"verbosity", CmdVerbosity, "verbosity 0\r\n"},
	{"stats", CmdStats, "stats\r\n"},
	{"stats settings", CmdStats, "stats settings\r\n"},
	{"stats items", CmdStats, "stats items\r\n"},
	{"stats slabs", CmdStats, "stats slabs\r\n"},
	{"stats cachedump", CmdStats, "stats cachedump 1 10\r\n"},
	{"stats detail dump", CmdStats, "stats detail dump\r\n"},
	{"stats reset", CmdStats, "stats reset\r\n"},
	{"stats unknown", CmdStats, "stats nonsense\r\n"},
	{"ms", CmdMs, "ms m 3 T0 F7\r\nabc\r\n"},
	{"ms not stored", CmdMs, "ms m 3 MA\r\nabc\r\n"},
	{"mg value", CmdMg, "mg m v f t s c k O99\r\n"},
	{"mg header", CmdMg, "mg m\r\n"},
	{"mg miss", CmdMg, "mg nope v\r\n"},
	{"mg bad flag", CmdMg, "mg m !\r\n"},
	{"ma", CmdMa, "ma cnt N0 J13 v\r\n"},
	{"ma miss", CmdMa, "ma nope\r\n"},
	{"md", CmdMd, "md m\r\n"},
	{"md miss", CmdMd, "md m\r\n"},
	{"mn", CmdMn, "mn\r\n"},
	{"flush_all", CmdFlushAll, "flush_all\r\n"},
}

// TestReadReplyMemcached frames replies captured from a real memcached, one
// command at a time, whole and at every split point.
func TestReadReplyMemcached(t *testing.T) {
	s := testservers.Memcached(t)
	c := dial(t, s.Addr)
	for _, tc := range replyCommands {
		t.Run(tc.name, func(t *testing.T) {
			c.Write([]byte(tc.in + sentinel))
			out, closed := readUntil(c, nil, "MN\r\n")
			if closed || !bytes.HasSuffix(out, []byte("MN\r\n")) {
				t.Fatalf("memcached answered %q, closed=%v", out, closed)
			}
			reply := len(out) - len("MN\r\n")
			if tc.cmd == CmdMn {
				out, _ = readUntil(c, out, "MN\r\nMN\r\n")
				reply = len("MN\r\n")
			}
			if n, err := ReadReply(out, tc.cmd); n != reply || err != nil {
				t.Fatalf("ReadReply(%q, %v) = %d, %v; want %d", out, tc.cmd, n, err, reply)
			}
			for k := 0; k < reply; k++ {
				if n, err := ReadReply(out[:k], tc.cmd); n != 0 || err != nil {
					t.Fatalf("prefix %d of %q: %d, %v", k, out, n, err)
				}
			}
		})
	}
}
