package proxy_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// blockCase is a blocking command, with a timeout of TIMEOUT, and what
// another client writes to serve it while it waits.
type blockCase struct {
	block []string
	setup [][]string // before it blocks: keys of the wrong type, say
	push  [][]string
}

var blockCases = []blockCase{
	{block: a("BLPOP", "{t}l", "{t}m", "TIMEOUT"), push: [][]string{{"RPUSH", "{t}m", "x", "y"}}},
	{block: a("BRPOP", "{t}l", "TIMEOUT"), push: [][]string{{"RPUSH", "{t}l", "x", "y"}}},
	{block: a("BZPOPMIN", "{t}z", "TIMEOUT"), push: [][]string{{"ZADD", "{t}z", "2.5", "b", "1", "a"}}},
	{block: a("BZPOPMAX", "{t}z", "{t}y", "TIMEOUT"), push: [][]string{{"ZADD", "{t}y", "3", "c"}}},
	{block: a("BLMOVE", "{t}l", "{t}d", "LEFT", "RIGHT", "TIMEOUT"), push: [][]string{{"LPUSH", "{t}l", "x"}}},
	{block: a("BRPOPLPUSH", "{t}l", "{t}d", "TIMEOUT"), push: [][]string{{"LPUSH", "{t}l", "x"}}},
	{block: a("BLMPOP", "TIMEOUT", "2", "{t}l", "{t}m", "RIGHT", "COUNT", "2"), push: [][]string{{"RPUSH", "{t}m", "a", "b", "c"}}},
	{block: a("BZMPOP", "TIMEOUT", "1", "{t}z", "MIN"), push: [][]string{{"ZADD", "{t}z", "1", "a", "2", "b"}}},
	{block: a("BLPOP", "{t}s", "TIMEOUT"), setup: [][]string{{"SET", "{t}s", "str"}}},
	{block: a("BLPOP", "{t}l", "-1")},
	{block: a("BLPOP", "{t}l", "nope")},
}

// TestBlockingSameRepliesAsRedis runs each blocking command through a
// pool of one server and a pool of three, and against a redis-server, in
// RESP2 and RESP3: with a timeout that expires (the reply, and the time
// it took, as Redis's: all at once, each on a connection of its own), and
// served by another client's push while it waits, with a timeout and with
// 0 (forever).
func TestBlockingSameRepliesAsRedis(t *testing.T) {
	for _, servers := range []int{1, 3} {
		t.Run(fmt.Sprintf("pool_of_%d", servers), func(t *testing.T) {
			f := proxytest.NewRedisFixture(t, servers, proxytest.Pool{HashTag: "{}"})
			direct := testservers.Redis(t)
			compared, differ := 0, 0
			check := func(label string, got, want []string) {
				compared += len(want)
				for i := range want {
					if got[i] != want[i] {
						differ++
						t.Errorf("%s, reply %d:\nproxy: %q\nredis: %q", label, i, got[i], want[i])
					}
				}
			}
			for _, proto := range []int{2, 3} {
				got, gotTook := runExpiring(t, f.Addr, f.Backends, proto)
				want, wantTook := runExpiring(t, direct.Addr, []*testservers.Server{direct}, proto)
				var worst time.Duration
				for i, c := range blockCases {
					label := fmt.Sprintf("RESP%d expire %q", proto, c.block)
					check(label, got[i], want[i])
					d := (gotTook[i] - wantTook[i]).Abs()
					worst = max(worst, d)
					if d > 400*time.Millisecond {
						t.Errorf("%s: took %v through the proxy, %v on Redis", label, gotTook[i], wantTook[i])
					}
				}
				t.Logf("RESP%d: timeouts of 0.3 s took at most %v more or less than on Redis", proto, worst)
				for _, c := range blockCases {
					for _, timeout := range []string{"10", "0"} {
						if c.push == nil {
							continue
						}
						got := runPushed(t, f.Addr, f.Backends, proto, timeout, c)
						want := runPushed(t, direct.Addr, []*testservers.Server{direct}, proto, timeout, c)
						check(fmt.Sprintf("RESP%d timeout %s %q", proto, timeout, c.block), got, want)
					}
				}
			}
			t.Logf("%d replies compared, %d differ", compared, differ)
		})
	}
}

// flushAll empties the servers and returns their addresses.
func flushAll(t *testing.T, servers []*testservers.Server) []string {
	t.Helper()
	var addrs []string
	for _, s := range servers {
		addrs = append(addrs, s.Addr)
		if _, err := testservers.Do(s.Addr, "FLUSHALL"); err != nil {
			t.Fatalf("FLUSHALL %s: %v", s.Addr, err)
		}
	}
	return addrs
}

// dialProto dials addr and says HELLO 3 when proto is 3.
func dialProto(t *testing.T, addr string, proto int) *proxytest.Conn {
	t.Helper()
	c := proxytest.Dial(t, addr)
	if proto == 3 {
		c.Hello3()
	}
	return c
}

// withTimeout returns args with TIMEOUT replaced by timeout.
func withTimeout(args []string, timeout string) []string {
	out := append([]string(nil), args...)
	for i := range out {
		if out[i] == "TIMEOUT" {
			out[i] = timeout
		}
	}
	return out
}

// runExpiring sends every blocking command with a timeout of 0.3 s at
// once, each on a connection of its own, and returns per command its
// replies (the setup's, its own, then a PING's) and how long it took.
func runExpiring(t *testing.T, addr string, servers []*testservers.Server, proto int) ([][]string, []time.Duration) {
	t.Helper()
	flushAll(t, servers)
	setup := dialProto(t, addr, proto)
	defer setup.Net.Close()
	out := make([][]string, len(blockCases))
	took := make([]time.Duration, len(blockCases))
	conns := make([]*proxytest.Conn, len(blockCases))
	for i, c := range blockCases {
		for _, s := range c.setup {
			out[i] = append(out[i], setup.DoAny(s...))
		}
		conns[i] = dialProto(t, addr, proto)
		defer conns[i].Net.Close()
	}
	start := time.Now()
	for i, c := range blockCases {
		conns[i].Write(proxytest.EncodeCommand(nil, withTimeout(c.block, "0.3")...))
	}
	for i := range blockCases {
		out[i] = append(out[i], conns[i].ReadAny())
		took[i] = time.Since(start)
	}
	for i := range blockCases {
		out[i] = append(out[i], conns[i].DoAny("PING"))
	}
	return out, took
}

// runPushed empties the servers, sends c's blocking command with timeout,
// pushes from another client once it waits, and returns the replies.
func runPushed(t *testing.T, addr string, servers []*testservers.Server, proto int, timeout string, c blockCase) []string {
	t.Helper()
	addrs := flushAll(t, servers)
	blocked, pusher := dialProto(t, addr, proto), dialProto(t, addr, proto)
	defer blocked.Net.Close()
	defer pusher.Net.Close()
	blocked.Write(proxytest.EncodeCommand(nil, withTimeout(c.block, timeout)...))
	waitBlocked(t, addrs...)
	var out []string
	for _, p := range c.push {
		out = append(out, pusher.DoAny(p...))
	}
	// The connection is in step, and the data as Redis leaves it.
	return append(out, blocked.ReadAny(), blocked.DoAny("PING"), pusher.DoAny("LRANGE", "{t}d", "0", "-1"),
		pusher.DoAny("ZRANGE", "{t}z", "0", "-1", "WITHSCORES"), pusher.DoAny("LRANGE", "{t}m", "0", "-1"))
}

// waitBlocked polls until a connection of one of the servers is blocked
// (CLIENT LIST flags b), for up to 5 s.
func waitBlocked(t *testing.T, addrs ...string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		for _, a := range addrs {
			for _, l := range sessionStates(t, a) {
				if strings.Contains(l, " flags=b") {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no client blocked on %v after 5 s", addrs)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestBlockedClientLeavesElement is the test: a client blocked in
// BLPOP disconnects, then another client pushes: the element stays in the
// list, for the server forgot the blocked command at once.
func TestBlockedClientLeavesElement(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 1, proxytest.Pool{})
	b := f.Backends[0].Addr
	for _, args := range [][]string{{"BLPOP", "q", "0"}, {"BRPOPLPUSH", "q", "q2", "0"}, {"BLMPOP", "0", "1", "q", "LEFT"}} {
		c := proxytest.Dial(t, f.Addr)
		c.Write(proxytest.EncodeCommand(nil, args...))
		waitBlocked(t, b)
		c.Net.Close()
		left := time.Now()
		// Poll (for up to 2 s) until the server unblocked it: the push
		// comes after the proxy saw the client go.
		for len(sessionStates(t, b)) > 0 && time.Since(left) < 2*time.Second {
			time.Sleep(time.Millisecond)
		}
		took := time.Since(left)
		pusher := proxytest.Dial(t, f.Addr)
		if got := pusher.Do("RPUSH", "q", "job"); got != ":1\r\n" {
			t.Fatalf("RPUSH: %q", got)
		}
		if got := pusher.Do("LLEN", "q"); got != ":1\r\n" {
			t.Errorf("%q: LLEN after the blocked client left and an RPUSH: %q, want :1 (the element was popped for nobody)", args, got)
		}
		t.Logf("%q: the server unblocked the client %v after it left", args, took)
		pusher.Do("DEL", "q", "q2")
	}
}

// hammer runs n clients that each SET and GET their own keys rounds
// times through addr, and returns the longest round trip; errors fail
// the test.
func hammer(t *testing.T, addr string, keys []string, n, rounds int) time.Duration {
	t.Helper()
	var (
		mu    sync.Mutex
		worst time.Duration
		errs  []error
		wg    sync.WaitGroup
	)
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := proxytest.TryDial(t, addr)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			defer c.Net.Close()
			key := keys[g%len(keys)]
			for i := range rounds {
				for _, args := range [][]string{{"SET", key, fmt.Sprint(i)}, {"GET", key}} {
					start := time.Now()
					rep, err := c.TryDo(10*time.Second, args...)
					d := time.Since(start)
					mu.Lock()
					worst = max(worst, d)
					if err == nil && strings.HasPrefix(rep.Raw, "-") {
						err = fmt.Errorf("%q: %q", args, rep.Raw)
					}
					if err != nil {
						errs = append(errs, err)
					}
					mu.Unlock()
					if err != nil {
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	return worst
}

// TestBlockedClientDelaysNoOne has a client blocked in BLPOP 0 while 50
// others SET and GET keys of every server, its own included: none waits
// behind it. Then a client that watches a key of one server blocks on a
// key of another: that command too waits on a connection of its own, not
// on the connection the other clients share.
func TestBlockedClientDelaysNoOne(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 3, proxytest.Pool{HashTag: "{}"})
	var keys []string
	for shard := range 3 {
		keys = append(keys, f.KeysOn(shard, "hot:", 10)...)
	}
	var addrs []string
	for _, b := range f.Backends {
		addrs = append(addrs, b.Addr)
	}
	blocked := proxytest.Dial(t, f.Addr)
	blocked.Write(proxytest.EncodeCommand(nil, "BLPOP", f.KeysOn(0, "q", 1)[0], "0"))
	waitBlocked(t, addrs...)
	worst := hammer(t, f.Addr, keys, 50, 20)
	t.Logf("BLPOP 0 waiting: 50 clients x 40 requests, longest %v", worst)
	if worst > 500*time.Millisecond {
		t.Errorf("a request took %v while a client was blocked", worst)
	}

	watcher := proxytest.Dial(t, f.Addr)
	if got := watcher.Do("WATCH", f.KeysOn(1, "w", 1)[0]); got != "+OK\r\n" {
		t.Fatalf("WATCH: %q", got)
	}
	start := time.Now()
	watcher.Write(proxytest.EncodeCommand(nil, "BLPOP", f.KeysOn(2, "q", 1)[0], "1.5"))
	worst = hammer(t, f.Addr, f.KeysOn(2, "hot:", 10), 50, 5)
	t.Logf("BLPOP 1.5 of a watching client: 50 clients x 10 requests, longest %v", worst)
	if worst > 500*time.Millisecond {
		t.Errorf("a request took %v while a watching client was blocked on another server", worst)
	}
	if got := watcher.Read(); got != "*-1\r\n" {
		t.Errorf("BLPOP: %q, want *-1", got)
	}
	if took := time.Since(start); took < 1400*time.Millisecond {
		t.Errorf("BLPOP 1.5 returned after %v", took)
	}
	if got := watcher.Do("UNWATCH"); got != "+OK\r\n" {
		t.Errorf("UNWATCH: %q", got)
	}
}

// TestSessionLimit sets server_sessions: 2 and blocks 3 clients: the
// third is refused at once with an error naming the bound, a transaction
// too; once a blocked client is served, its connection takes the next.
func TestSessionLimit(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 1, proxytest.Pool{Keys: []string{"server_sessions: 2"}})
	b := f.Backends[0].Addr
	var blocked []*proxytest.Conn
	for i := range 2 {
		c := proxytest.Dial(t, f.Addr)
		c.Write(proxytest.EncodeCommand(nil, "BLPOP", fmt.Sprint("q", i), "0"))
		blocked = append(blocked, c)
	}
	for deadline := time.Now().Add(5 * time.Second); len(sessionStates(t, b)) < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("2 clients not blocked after 5 s: %q", sessionStates(t, b))
		}
	}
	third := proxytest.Dial(t, f.Addr)
	start := time.Now()
	got := third.Do("BLPOP", "q2", "0")
	took := time.Since(start)
	t.Logf("third BLPOP: %q after %v", got, took)
	if !strings.HasPrefix(got, "-ERR too many sessions") || !strings.Contains(got, "server_sessions") {
		t.Errorf("third BLPOP: %q, want an error naming server_sessions", got)
	}
	if took > time.Second {
		t.Errorf("refused after %v", took)
	}
	tx := proxytest.PipelineAny(t, third, [][]string{{"MULTI"}, {"SET", "k", "v"}, {"EXEC"}, {"GET", "k"}})
	if !strings.HasPrefix(tx[1], "-ERR too many sessions") || tx[2] != "-EXECABORT Transaction discarded because of previous errors.\r\n" || tx[3] != "$-1\r\n" {
		t.Errorf("transaction over the bound: %q", tx)
	}
	if got := third.Do("RPUSH", "q0", "x"); got != ":1\r\n" {
		t.Fatalf("RPUSH: %q", got)
	}
	if got := blocked[0].Read(); got != proxytest.Array(proxytest.Bulk("q0"), proxytest.Bulk("x")) {
		t.Errorf("BLPOP q0: %q", got)
	}
	third.Write(proxytest.EncodeCommand(nil, "BLPOP", "q2", "0"))
	waitBlocked(t, b)
	if got := proxytest.Dial(t, f.Addr).Do("RPUSH", "q2", "y"); got != ":1\r\n" {
		t.Fatalf("RPUSH: %q", got)
	}
	if got := third.Read(); got != proxytest.Array(proxytest.Bulk("q2"), proxytest.Bulk("y")) {
		t.Errorf("BLPOP q2 once a session ended: %q", got)
	}
}
