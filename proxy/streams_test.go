package proxy_test

import (
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// streamStep is a request of streamSteps; {s} and {t} stand for two stream
// keys under one hash tag. byShape compares only the reply's shape: it
// holds idle times, in milliseconds.
type streamStep struct {
	args    []string
	byShape bool
}

// streamSteps are a job queue's uses of a stream (BullMQ's, say): adding,
// reading, a consumer group's reads, acknowledgements, claims, trimming,
// and the errors Redis answers.
var streamSteps = []streamStep{
	{args: []string{"XADD", "{s}", "1-1", "job", "a"}},
	{args: []string{"XADD", "{s}", "1-2", "job", "b"}},
	{args: []string{"XADD", "{s}", "MAXLEN", "~", "100", "2-1", "job", "c"}},
	{args: []string{"XADD", "{s}", "1-1", "job", "old"}},
	{args: []string{"XADD", "{s}", "NOMKSTREAM", "3-0", "job", "d"}},
	{args: []string{"XLEN", "{s}"}},
	{args: []string{"XRANGE", "{s}", "-", "+"}},
	{args: []string{"XREVRANGE", "{s}", "+", "-", "COUNT", "2"}},
	{args: []string{"XGROUP", "CREATE", "{s}", "g", "0"}},
	{args: []string{"XGROUP", "CREATE", "{s}", "g", "0"}},
	{args: []string{"xgroup", "create", "{t}", "g", "$", "MKSTREAM"}},
	{args: []string{"XGROUP", "CREATECONSUMER", "{s}", "g", "c1"}},
	{args: []string{"XREADGROUP", "GROUP", "g", "c1", "COUNT", "2", "STREAMS", "{s}", ">"}},
	{args: []string{"XREADGROUP", "GROUP", "g", "c2", "STREAMS", "{s}", "{t}", ">", ">"}},
	{args: []string{"XREADGROUP", "GROUP", "g", "c2", "NOACK", "STREAMS", "{t}", ">"}},
	{args: []string{"XPENDING", "{s}", "g"}},
	{args: []string{"XPENDING", "{s}", "g", "-", "+", "10"}, byShape: true},
	{args: []string{"XACK", "{s}", "g", "1-1", "9-9"}},
	{args: []string{"XPENDING", "{s}", "g"}},
	{args: []string{"XCLAIM", "{s}", "g", "c3", "0", "1-2", "JUSTID"}},
	{args: []string{"XAUTOCLAIM", "{s}", "g", "c4", "0", "0-0", "COUNT", "10"}},
	{args: []string{"XINFO", "STREAM", "{s}"}},
	{args: []string{"XINFO", "STREAM", "{s}", "FULL"}, byShape: true},
	{args: []string{"XINFO", "GROUPS", "{s}"}},
	{args: []string{"XINFO", "CONSUMERS", "{s}", "g"}, byShape: true},
	{args: []string{"XREAD", "COUNT", "10", "STREAMS", "{s}", "{t}", "0", "0"}},
	{args: []string{"XREAD", "STREAMS", "{s}", "$"}},
	{args: []string{"XDEL", "{s}", "1-1"}},
	{args: []string{"XTRIM", "{s}", "MAXLEN", "2"}},
	{args: []string{"XSETID", "{s}", "5-0"}},
	{args: []string{"XGROUP", "SETID", "{s}", "g", "0"}},
	{args: []string{"XGROUP", "DELCONSUMER", "{s}", "g", "c1"}},
	{args: []string{"XGROUP", "DESTROY", "{s}", "g"}},
	{args: []string{"XINFO", "STREAM", "{nosuch}"}},
	{args: []string{"XINFO", "STREAM"}},
	{args: []string{"XINFO", "NOSUCH", "{s}"}},
	{args: []string{"XGROUP", "CREATECONSUMER", "{s}", "g"}},
	{args: []string{"XREAD", "STREAMS", "{s}", "{t}", "0"}},
	{args: []string{"XREAD", "COUNT", "1", "{s}", "0"}},
	{args: []string{"XREADGROUP", "GROUP", "g", "c", "STREAMS", "{s}", ">"}},
	{args: []string{"MEMORY", "USAGE", "{s}"}},
	{args: []string{"LPUSH", "{s}:l", "a", "b", "c"}},
	{args: []string{"LMPOP", "2", "{t}:l", "{s}:l", "RIGHT", "COUNT", "2"}},
	{args: []string{"ZADD", "{s}:z", "1", "a", "2", "b"}},
	{args: []string{"ZMPOP", "1", "{s}:z", "MAX"}},
}

// TestStreamsAsRedis runs streamSteps through a pool of three servers and
// on a redis-server of its own, in RESP2 and in RESP3, with keys under
// hash tags that live on each of the three servers: every reply is the
// server's, byte for byte.
func TestStreamsAsRedis(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 3, proxytest.Pool{HashTag: "{}"})
	ref := testservers.Redis(t)
	checked := 0
	for proto := 2; proto <= 3; proto++ {
		px, direct := proxytest.Dial(t, f.Addr), proxytest.Dial(t, ref.Addr)
		if proto == 3 {
			px.DoAny("HELLO", "3")
			direct.DoAny("HELLO", "3")
		}
		for shard := range f.Backends {
			tag := f.KeysOn(shard, "r"+string(rune('0'+proto))+"q", 1)[0]
			for _, st := range streamSteps {
				args := make([]string, len(st.args))
				for i, a := range st.args {
					a = strings.ReplaceAll(a, "{s}", "{"+tag+"}:s")
					args[i] = strings.ReplaceAll(a, "{t}", "{"+tag+"}:t")
				}
				got, want := px.DoAny(args...), direct.DoAny(args...)
				if st.byShape {
					got, want = proxytest.Shape(got), proxytest.Shape(want)
				}
				if got != want {
					t.Errorf("RESP%d %q: the proxy answers %q, Redis %q", proto, args, proxytest.Short(got), proxytest.Short(want))
				}
				checked++
			}
			if n := proxytest.Dbsize(t, f.Backends[shard].Addr); n == 0 {
				t.Errorf("server %d holds no key after the steps of its tag %s", shard, tag)
			}
		}
	}
	t.Logf("%d stream requests compared", checked)
}

// TestStreamsRefusals checks the stream requests the proxy cannot serve:
// keys on different servers (BLOCK or not), and subcommands without a
// key.
func TestStreamsRefusals(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 3, proxytest.Pool{HashTag: "{}"})
	a, b := f.KeysOn(0, "a", 1)[0], f.KeysOn(1, "b", 1)[0]
	px := proxytest.Dial(t, f.Addr)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"XREAD", "STREAMS", a, b, "0", "0"}, "-ERR the keys of 'xread' live on different servers"},
		{[]string{"XREADGROUP", "GROUP", "g", "c", "STREAMS", a, b, ">", ">"}, "-ERR the keys of 'xreadgroup' live on different servers"},
		{[]string{"XREAD", "BLOCK", "10", "STREAMS", a, b, "$", "$"}, "-ERR the keys of 'xread' live on different servers"},
		{[]string{"XREAD", "BLOCK", "10", "STREAMS", a, "$"}, "*-1\r\n"}, // served: a blocking session
		{[]string{"XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", a, ">"}, "-NOGROUP"},
		{[]string{"XINFO", "HELP"}, "-ERR 'xinfo help' without keys cannot be routed by the proxy"},
		{[]string{"MEMORY", "STATS"}, "-ERR 'memory stats' without keys cannot be routed by the proxy"},
	} {
		if got := px.Do(c.args...); !strings.HasPrefix(got, c.want) {
			t.Errorf("%q: %q, want %q...", c.args, got, c.want)
		}
	}
	if got := px.Do("PING"); got != "+PONG\r\n" {
		t.Errorf("PING after the refusals: %q", got)
	}
}
