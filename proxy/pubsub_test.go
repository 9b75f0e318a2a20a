package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
)

// psStep is one step of a pub/sub script: a command of the subscriber and
// the replies it reads (n; set: compared in any order, as Redis lists a
// dict), or a command of a publisher, after which the subscriber reads as
// many messages as the publisher's integer reply says it was sent.
type psStep struct {
	sub  []string
	n    int
	set  bool
	skip bool // read, not compared (HELLO 3: the proxy names itself)
	pub  []string
	quit bool // the step ends the connection: the close is part of it
}

func psSub(n int, args ...string) psStep { return psStep{sub: args, n: n} }
func psPub(args ...string) psStep        { return psStep{pub: args} }

// pubsubScript subscribes, publishes and unsubscribes through every
// subscription command, with the messages, PINGs and refused commands of
// subscribed mode. Its channels spread over three servers.
func pubsubScript(resp3 bool) []psStep {
	var s []psStep
	if resp3 {
		s = append(s, psStep{sub: []string{"HELLO", "3"}, n: 1, skip: true})
	}
	s = append(s,
		psSub(1, "UNSUBSCRIBE"), psSub(1, "PUNSUBSCRIBE"), psSub(1, "SUNSUBSCRIBE"),
		psSub(1, "UNSUBSCRIBE", "nothing"),
		psSub(3, "SUBSCRIBE", "a", "b", "a"),
		psSub(2, "PSUBSCRIBE", "n*", "x*"),
		psSub(2, "SSUBSCRIBE", "s1", "s2"),
		psSub(2, "SUBSCRIBE", "news", "xa"),
		psSub(1, "PING"), psSub(1, "PING", "hello there"), psSub(1, "PING", "a", "b"),
		psSub(1, "GET", "k"), psSub(1, "OBJECT", "ENCODING", "k"), psSub(1, "PUBSUB", "NUMPAT"), psSub(1, "NOSUCH"),
		psSub(1, "SUBSCRIBE"),
		psPub("PUBLISH", "a", "m1"), psPub("PUBLISH", "b", "m2"), psPub("PUBLISH", "news", "m3"),
		psPub("PUBLISH", "nobody", "m4"), psPub("PUBLISH", "xa", "m5"), psPub("PUBLISH", "xyz", "m6"),
		psPub("PUBLISH", "c", "m7"), psPub("SPUBLISH", "s1", "m8"), psPub("SPUBLISH", "s2", ""),
		psPub("SPUBLISH", "s3", "m9"), psPub("PUBLISH", "s1", "m10"), psPub("PUBLISH", "a", strings.Repeat("z", 70000)),
		psSub(2, "UNSUBSCRIBE", "a", "zz"),
		psPub("PUBLISH", "a", "m11"),
		psSub(2, "PUNSUBSCRIBE", "n*", "n*"),
		psPub("PUBLISH", "news", "m12"), psPub("PUBLISH", "nx", "m13"),
		psSub(1, "SUNSUBSCRIBE", "s1"),
		psPub("SPUBLISH", "s1", "m14"), psPub("SPUBLISH", "s2", "m15"),
		psStep{sub: []string{"UNSUBSCRIBE"}, n: 3, set: true},
		psSub(1, "PUNSUBSCRIBE"),
		psSub(1, "PING"), // still subscribed: to s2
		psSub(1, "SUNSUBSCRIBE"),
		psSub(1, "PING"), psSub(1, "GET", "k"), psSub(1, "UNSUBSCRIBE"), psSub(1, "SUNSUBSCRIBE", "s2"),
		psPub("PUBLISH", "b", "m16"),
		psSub(1, "SUBSCRIBE", "c"), psSub(1, "PSUBSCRIBE", "c*"),
		psPub("PUBLISH", "c", "m17"),
		psSub(1, "RESET"),
		psPub("PUBLISH", "c", "m18"),
		psSub(1, "PING"), psSub(1, "GET", "k"),
		psSub(1, "SSUBSCRIBE", "s9"),
		psPub("SPUBLISH", "s9", "m19"),
		psStep{sub: []string{"QUIT"}, n: 1, quit: true},
	)
	return s
}

// runPubsubScript runs steps against addr (a redis-server, or the proxy)
// and returns what the subscriber and the publisher read, step by step.
func runPubsubScript(t *testing.T, addr string, steps []psStep) []string {
	t.Helper()
	sub, pub := proxytest.Dial(t, addr), proxytest.Dial(t, addr)
	var out []string
	for i, st := range steps {
		if st.pub != nil {
			n := pub.DoAny(st.pub...)
			got := []string{n}
			count, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(n, ":"), "\r\n"))
			if err != nil {
				t.Fatalf("step %d %q: reply %q", i, st.pub, n)
			}
			for range count {
				got = append(got, psRead(t, sub, i, append(st.pub, n, addr)))
			}
			out = append(out, fmt.Sprintf("%d %q: %q", i, st.pub, got))
			continue
		}
		sub.Write(proxytest.EncodeCommand(nil, st.sub...))
		got := make([]string, st.n)
		for j := range got {
			got[j] = psRead(t, sub, i, st.sub)
		}
		if st.skip {
			continue
		}
		if st.set {
			got = unorderedConfirmations(t, got)
		}
		if st.quit {
			sub.Net.SetReadDeadline(time.Now().Add(5 * time.Second))
			rest, err := io.ReadAll(sub.R)
			got = append(got, fmt.Sprintf("then %q %v", rest, err))
		}
		out = append(out, fmt.Sprintf("%d %q: %q", i, st.sub, got))
	}
	return out
}

// unorderedConfirmations renders the confirmations of an UN- command
// without arguments, which Redis lists in its dict's order: their kinds
// and counts in order (the counts fall by one each), their names sorted.
func unorderedConfirmations(t *testing.T, raws []string) []string {
	t.Helper()
	var names, rest []string
	for _, raw := range raws {
		rep, err := proxytest.ReadReply(bufio.NewReader(strings.NewReader(raw)))
		if err != nil || len(rep.Elems) != 3 {
			t.Fatalf("confirmation %q: %v", raw, err)
		}
		names = append(names, rep.Elems[1].Raw)
		rest = append(rest, fmt.Sprintf("%c%d %s %s", rep.Kind, rep.Num, rep.Elems[0].Raw, rep.Elems[2].Raw))
	}
	slices.Sort(names)
	return append(rest, names...)
}

// psRead reads the subscriber's next reply at step i.
func psRead(t *testing.T, c *proxytest.Conn, i int, cmd []string) string {
	t.Helper()
	c.Net.SetReadDeadline(time.Now().Add(10 * time.Second))
	raw, err := proxytest.ReadAny(c.R)
	if err != nil {
		t.Fatalf("step %d %q: read: %v (read %q)", i, cmd, err, proxytest.Short(raw))
	}
	return raw
}

// comparePubsub runs the script on a redis-server and through the proxy
// and reports each step whose bytes differ.
func comparePubsub(t *testing.T, direct, proxied string, steps []psStep) {
	t.Helper()
	want := runPubsubScript(t, direct, steps)
	got := runPubsubScript(t, proxied, steps)
	bad := 0
	for i := range want {
		if got[i] != want[i] {
			bad++
			t.Errorf("step differs:\nredis: %s\nproxy: %s", proxytest.Short(want[i]), proxytest.Short(got[i]))
		}
	}
	t.Logf("%d steps, %d differ", len(want), bad)
}

// TestPubSubDifferential checks that a subscriber through the proxy reads
// what Redis sends it, byte for byte, in RESP2 and RESP3, through a pool
// of one server and of three: confirmations and their counts, messages
// of channels, patterns and shard channels, PING and refused commands in
// subscribed mode, RESET and QUIT.
func TestPubSubDifferential(t *testing.T) {
	ref := proxytest.StartRedisBackends(t, 1)[0]
	for _, n := range []int{1, 3} {
		f := proxytest.NewRedisFixture(t, n, proxytest.Pool{HashTag: "{}"})
		for _, resp3 := range []bool{false, true} {
			t.Run(fmt.Sprintf("servers=%d/resp3=%v", n, resp3), func(t *testing.T) {
				comparePubsub(t, ref.Addr, f.Addr, pubsubScript(resp3))
			})
		}
	}
}

// TestPubSubResp3Interleaved checks that a RESP3 subscriber may send any
// command: its replies come among the pushes, in Redis's order.
func TestPubSubResp3Interleaved(t *testing.T) {
	ref := proxytest.StartRedisBackends(t, 1)[0]
	f := proxytest.NewRedisFixture(t, 3, proxytest.Pool{HashTag: "{}"})
	steps := []psStep{
		{sub: []string{"HELLO", "3"}, n: 1, skip: true},
		psSub(2, "SUBSCRIBE", "a", "b"), psSub(1, "PSUBSCRIBE", "n*"),
		psSub(1, "SET", "k", "v"), psPub("PUBLISH", "a", "m1"), psSub(1, "GET", "k"),
		psPub("PUBLISH", "news", "m2"), psSub(1, "HGETALL", "nohash"), psSub(1, "PING"), psSub(1, "PING", "x"),
		psSub(1, "ECHO", "e"), psPub("PUBLISH", "b", "m3"), psSub(1, "MGET", "k", "k2", "k3"),
		psSub(1, "DEL", "k"), psSub(1, "PUBSUB", "NUMSUB", "a", "b", "c"), psSub(1, "PUBSUB", "NUMPAT"),
		psSub(1, "SUBSCRIBE", "c"), psPub("PUBLISH", "c", "m4"), psSub(1, "GET", "k"),
		psStep{sub: []string{"UNSUBSCRIBE"}, n: 3, set: true}, psSub(1, "PUNSUBSCRIBE"),
		psSub(1, "GET", "k"), psPub("PUBLISH", "a", "m5"),
	}
	comparePubsub(t, ref.Addr, f.Addr, steps)
}

// pubsubInfoSetup subscribes five clients on addr, which stay subscribed
// until the test ends.
func pubsubInfoSetup(t *testing.T, addr string) {
	t.Helper()
	for _, cmds := range [][][]string{
		{{"SUBSCRIBE", "a", "b", "c", "news", "{t}1", "{t}2"}},
		{{"SUBSCRIBE", "a", "nx"}, {"PSUBSCRIBE", "n*", "x*"}},
		{{"PSUBSCRIBE", "x*", "y?"}},
		{{"SSUBSCRIBE", "s1", "s2", "t1"}},
		{{"SSUBSCRIBE", "s1"}, {"SUBSCRIBE", "s3"}},
	} {
		c := proxytest.Dial(t, addr)
		for _, cmd := range cmds {
			c.Write(proxytest.EncodeCommand(nil, cmd...))
			for range len(cmd) - 1 {
				c.ReadAny()
			}
		}
	}
}

// TestPubSubInfo checks PUBSUB CHANNELS, NUMSUB, NUMPAT, SHARDCHANNELS and
// SHARDNUMSUB through a pool of three: the same answers as one Redis with
// the same subscribers (lists compared in any order).
func TestPubSubInfo(t *testing.T) {
	ref := proxytest.StartRedisBackends(t, 1)[0]
	f := proxytest.NewRedisFixture(t, 3, proxytest.Pool{HashTag: "{}"})
	pubsubInfoSetup(t, ref.Addr)
	pubsubInfoSetup(t, f.Addr)
	queries := [][]string{
		{"PUBSUB", "CHANNELS"}, {"PUBSUB", "CHANNELS", "n*"}, {"PUBSUB", "CHANNELS", "zz*"}, {"PUBSUB", "CHANNELS", "{t}*"},
		{"PUBSUB", "NUMSUB"}, {"PUBSUB", "NUMSUB", "a", "b", "nx", "zz", "a", "s1"}, {"PUBSUB", "NUMPAT"},
		{"PUBSUB", "SHARDCHANNELS"}, {"PUBSUB", "SHARDCHANNELS", "s*"}, {"PUBSUB", "SHARDNUMSUB", "s1", "s2", "t1", "a", "zz"},
		{"PUBSUB", "SHARDNUMSUB"}, {"PUBSUB", "CHANNELS", "a", "b"}, {"PUBSUB", "NUMPAT", "x"}, {"PUBSUB", "NOSUCH"},
		{"PUBLISH", "a", "x"}, {"PUBLISH", "nx", "x"}, {"SPUBLISH", "s1", "x"}, {"PUBLISH", "s1", "x"},
	}
	for _, resp3 := range []bool{false, true} {
		direct, proxied := proxytest.Dial(t, ref.Addr), proxytest.Dial(t, f.Addr)
		if resp3 {
			direct.Hello3()
			proxied.Hello3()
		}
		for _, q := range queries {
			want, got := direct.DoAny(q...), proxied.DoAny(q...)
			if q[1] == "CHANNELS" || q[1] == "SHARDCHANNELS" {
				want, got = sortedElems(t, want), sortedElems(t, got)
			}
			if got != want {
				t.Errorf("resp3=%v %q:\nredis: %q\nproxy: %q", resp3, q, want, got)
			}
		}
	}
}

// sortedElems returns an array reply with its elements sorted: Redis lists
// channels in its dict's order.
func sortedElems(t *testing.T, raw string) string {
	t.Helper()
	head, body, ok := strings.Cut(raw, "\r\n")
	if !ok || head[0] != '*' {
		return raw
	}
	var elems []string
	for body != "" {
		rep, err := proxytest.ReadReply(bufio.NewReader(strings.NewReader(body)))
		if err != nil {
			t.Fatalf("element of %q: %v", raw, err)
		}
		elems = append(elems, rep.Raw)
		body = body[len(rep.Raw):]
	}
	slices.Sort(elems)
	return head + "\r\n" + strings.Join(elems, "")
}

// TestPubSubResetForgets checks that once a subscriber has read +RESET
// (and, likewise, the last UNSUBSCRIBE's confirmation) no server holds its
// subscriptions: a PUBLISH right after reaches nobody, as on Redis.
func TestPubSubResetForgets(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("servers=%d", n), func(t *testing.T) { resetForgets(t, n) })
	}
}

func resetForgets(t *testing.T, n int) {
	f := proxytest.NewRedisFixture(t, n, proxytest.Pool{HashTag: "{}"})
	sub, pub := proxytest.Dial(t, f.Addr), proxytest.Dial(t, f.Addr)
	stale := 0
	const rounds = 300
	for i := range rounds {
		if i%2 == 1 {
			sub.Hello3()
		}
		sub.Write(proxytest.EncodeCommand(nil, "SUBSCRIBE", "c", "d"))
		sub.Write(proxytest.EncodeCommand(nil, "PSUBSCRIBE", "c*"))
		for range 3 {
			sub.ReadAny()
		}
		if got := pub.DoAny("PUBLISH", "c", "before"); got != ":2\r\n" {
			t.Fatalf("round %d: PUBLISH before RESET: %q", i, got)
		}
		sub.ReadAny()
		sub.ReadAny()
		if got := sub.DoAny("RESET"); got != "+RESET\r\n" {
			t.Fatalf("round %d: RESET: %q", i, got)
		}
		if got := pub.DoAny("PUBLISH", "c", "m"); got != ":0\r\n" {
			stale++
		}
	}
	t.Logf("%d of %d PUBLISHes right after RESET reached a subscription", stale, rounds)
	if stale > 0 {
		t.Errorf("a PUBLISH after RESET was received %d times in %d", stale, rounds)
	}
	if got := sub.DoAny("PING"); got != "+PONG\r\n" {
		t.Errorf("PING after RESET: %q", got)
	}
}

// TestPubSubHelloWhileSubscribed checks a RESP3 subscriber that says
// HELLO 2: from then on it is a RESP2 subscriber, whose messages are
// arrays, as Redis sends them.
func TestPubSubHelloWhileSubscribed(t *testing.T) {
	ref := proxytest.StartRedisBackends(t, 1)[0]
	f := proxytest.NewRedisFixture(t, 3, proxytest.Pool{HashTag: "{}"})
	steps := []psStep{
		{sub: []string{"HELLO", "3"}, n: 1, skip: true},
		psSub(2, "SUBSCRIBE", "a", "b"), psSub(1, "PSUBSCRIBE", "n*"), psPub("PUBLISH", "a", "m1"),
		{sub: []string{"HELLO", "2"}, n: 1, skip: true},
		psPub("PUBLISH", "a", "m2"), psPub("PUBLISH", "news", "m3"), psSub(1, "PING"), psSub(1, "GET", "k"),
		psSub(1, "SUBSCRIBE", "c"), psPub("PUBLISH", "c", "m4"), psSub(1, "UNSUBSCRIBE", "a"),
		{sub: []string{"HELLO", "3"}, n: 1, skip: true},
		psPub("PUBLISH", "b", "m5"), psSub(1, "PING"), psSub(1, "UNSUBSCRIBE", "b"),
	}
	comparePubsub(t, ref.Addr, f.Addr, steps)
}
