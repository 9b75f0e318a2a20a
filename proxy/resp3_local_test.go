package proxy_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// helloShape3 is the Shape of Redis 7's answer to HELLO 3: a map of
// server, version, proto, id, mode, role and modules, in that order.
const helloShape3 = `%[$"server": $ $"version": $ $"proto": : $"id": : $"mode": $ $"role": $ $"modules": *[]]`

// helloShape2 is the Shape of Redis 7's answer to HELLO 2: the same pairs
// as a flat array.
const helloShape2 = `*[$ $ $ $ $ : $ : $ $ $ $ $ *[]]`

// How a reply the proxy makes itself is compared with Redis's.
const (
	sameBytes  = iota // byte for byte
	sameShape         // proxytest.Shape: types and structure, map keys
	sameKind          // the type byte alone (a list of commands, say)
	proxyError        // the proxy refuses what Redis does: a simple "-ERR " error, not sent to Redis
	proxyOK           // the proxy answers +OK where Redis 7.0 has no such command; not sent to Redis
)

// localStep is one command the proxy answers itself, and how its reply
// must compare with Redis's.
type localStep struct {
	args    []string
	compare int
}

// resp3LocalSteps runs after HELLO 3 on both connections.
var resp3LocalSteps = []localStep{
	{[]string{"PING"}, sameBytes}, {[]string{"PING", "hello there"}, sameBytes}, {[]string{"ECHO", "x\r\ny"}, sameBytes},
	{[]string{"SELECT", "0"}, sameBytes}, {[]string{"CLIENT", "GETNAME"}, sameBytes},
	{[]string{"CLIENT", "SETNAME", "app"}, sameBytes}, {[]string{"CLIENT", "GETNAME"}, sameBytes},
	{[]string{"CLIENT", "SETNAME", "a b"}, sameBytes}, {[]string{"CLIENT", "ID"}, sameShape},
	{[]string{"CLIENT", "SETINFO", "LIB-NAME", "test"}, proxyOK}, // Redis 7.2's, sent by clients
	{[]string{"COMMAND", "COUNT"}, sameShape}, {[]string{"COMMAND", "INFO", "nosuchcommand"}, sameBytes},
	{[]string{"COMMAND", "INFO", "nosuch1", "nosuch2"}, sameBytes}, {[]string{"COMMAND", "INFO", "get"}, sameKind},
	{[]string{"COMMAND", "DOCS", "nosuchcommand"}, sameBytes}, {[]string{"COMMAND", "DOCS"}, sameKind},
	{[]string{"COMMAND", "LIST", "FILTERBY", "PATTERN", "nosuch*"}, sameBytes}, {[]string{"COMMAND"}, sameKind},
	{[]string{"CONFIG", "GET", "nosuchparameter"}, sameBytes}, {[]string{"CONFIG", "GET", "maxmemory"}, sameKind},
	{[]string{"CONFIG", "GET", "nosuch1", "nosuch2"}, sameBytes},
	{[]string{"INFO"}, sameKind}, {[]string{"INFO", "server"}, sameKind},
	{[]string{"HELLO"}, sameShape}, {[]string{"HELLO", "3"}, sameShape}, {[]string{"HELLO", "3", "SETNAME", "byhello"}, sameShape},
	{[]string{"CLIENT", "GETNAME"}, sameBytes},
	// Errors with Redis's own text.
	{[]string{"PING", "a", "b"}, sameBytes}, {[]string{"ECHO"}, sameBytes}, {[]string{"SELECT"}, sameBytes},
	{[]string{"CLIENT"}, sameBytes}, {[]string{"HELLO", "4"}, sameBytes}, {[]string{"HELLO", "1"}, sameBytes},
	{[]string{"HELLO", "abc"}, sameBytes}, {[]string{"HELLO", "3", "FOO"}, sameBytes},
	{[]string{"HELLO", "3", "SETNAME", "a b"}, sameBytes}, {[]string{"FOOBAR", "x"}, sameBytes},
	{[]string{"GET"}, sameBytes}, {[]string{"CONFIG", "GET"}, sameBytes},
	{[]string{"CLIENT", "GETNAME", "x"}, sameBytes}, {[]string{"CLIENT", "SETNAME"}, sameBytes},
	{[]string{"CLIENT", "ID", "x"}, sameBytes}, {[]string{"HELLO", "3", "AUTH", "default", "anything"}, sameShape},
	{[]string{"HELLO", "3", "AUTH", "nobody", "x"}, sameBytes},
	// Errors the proxy words itself.
	{[]string{"SELECT", "1"}, proxyError}, {[]string{"CONFIG", "SET", "maxmemory", "0"}, proxyError},
	{[]string{"CLIENT", "KILL", "x"}, proxyError}, {[]string{"EXEC"}, sameBytes}, {[]string{"FLUSHALL"}, proxyError},
	{[]string{"UNSUBSCRIBE"}, sameBytes}, {[]string{"CLIENT", "TRACKING", "ON"}, proxyError},
	{[]string{"EVAL", "return 1", "0"}, proxyError},
	// Still in step, still RESP3.
	{[]string{"GET", "nosuchkey"}, sameBytes}, {[]string{"HGETALL", "nosuchkey"}, sameBytes},
}

// TestRESP3LocalReplies sends the commands the proxy answers itself after
// HELLO 3, through the proxy and to a redis-server, and compares each
// reply as its step says: byte for byte where the proxy's answer must be
// Redis's, by shape where values differ (ids, versions), by type byte for
// lists of commands, and errors the proxy words itself must be simple
// errors where a RESP3 client expects one.
func TestRESP3LocalReplies(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 2, proxytest.Pool{HashTag: "{}"})
	direct := testservers.Redis(t)
	viaProxy, viaRedis := proxytest.Dial(t, f.Addr), proxytest.Dial(t, direct.Addr)
	for _, c := range []*proxytest.Conn{viaProxy, viaRedis} {
		if got := proxytest.Shape(c.DoAny("HELLO", "3")); got != helloShape3 {
			t.Fatalf("HELLO 3: %s, want %s", got, helloShape3)
		}
	}
	k1, k2 := keysOnTwoServers(t, f)
	steps := append(slices.Clip(resp3LocalSteps), localStep{[]string{"MSETNX", k1, "x", k2, "y"}, proxyError},
		localStep{[]string{"GET", "nosuchkey"}, sameBytes})
	runLocalSteps(t, viaProxy, viaRedis, steps)
	info := viaProxy.DoAny("INFO")
	if _, body, _ := strings.Cut(info, "\r\n"); !strings.HasPrefix(body, "txt:") || !strings.Contains(body, "redis_version:") {
		t.Errorf("INFO: %q, want a verbatim string of format txt with redis_version", proxytest.Short(info))
	}
	checkQuit(t, viaProxy, viaRedis)
}

// runLocalSteps sends each step through the proxy and, unless only the
// proxy is asked, to Redis, and compares the replies.
func runLocalSteps(t *testing.T, viaProxy, viaRedis *proxytest.Conn, steps []localStep) {
	t.Helper()
	for _, st := range steps {
		got, want := viaProxy.DoAny(st.args...), ""
		if st.compare != proxyError && st.compare != proxyOK {
			want = viaRedis.DoAny(st.args...)
		}
		if msg := compareLocal(st.compare, got, want); msg != "" {
			t.Errorf("%q: %s\nproxy: %q\nredis: %q", st.args, msg, proxytest.Short(got), proxytest.Short(want))
		}
	}
}

// compareLocal says how got differs from want under the comparison mode,
// or "" when it does not.
func compareLocal(mode int, got, want string) string {
	switch mode {
	case sameBytes:
		if got != want {
			return "bytes differ"
		}
	case sameShape:
		if g, w := proxytest.Shape(got), proxytest.Shape(want); g != w {
			return "shapes differ: " + g + " vs " + w
		}
	case sameKind:
		if got[0] != want[0] {
			return "types differ"
		}
	case proxyError:
		if !strings.HasPrefix(got, "-ERR ") || strings.Count(got, "\r\n") != 1 {
			return "want a simple -ERR error"
		}
	case proxyOK:
		if got != "+OK\r\n" {
			return "want +OK"
		}
	}
	return ""
}

// checkQuit checks that QUIT answers +OK in RESP3 too and closes.
func checkQuit(t *testing.T, viaProxy, viaRedis *proxytest.Conn) {
	t.Helper()
	for name, c := range map[string]*proxytest.Conn{"proxy": viaProxy, "redis": viaRedis} {
		if got := c.DoAny("QUIT"); got != "+OK\r\n" {
			t.Errorf("%s: QUIT: %q", name, got)
		}
		c.ExpectClosed()
	}
}

// TestRESP3Hello follows one connection through HELLO 3, HELLO, HELLO 2
// and back, through the proxy and to a redis-server: the answers' shapes
// and fields, and every reply after each switch in the protocol it
// switched to, byte for byte.
func TestRESP3Hello(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 1, proxytest.Pool{})
	direct := testservers.Redis(t)
	viaProxy, viaRedis := proxytest.Dial(t, f.Addr), proxytest.Dial(t, direct.Addr)
	steps := []localStep{
		{[]string{"HSET", "h", "a", "1"}, sameBytes}, {[]string{"ZADD", "z", "1.5", "m"}, sameBytes},
		{[]string{"HELLO", "3"}, sameShape}, {[]string{"GET", "nosuchkey"}, sameBytes},
		{[]string{"HGETALL", "h"}, sameBytes}, {[]string{"ZSCORE", "z", "m"}, sameBytes},
		{[]string{"CLIENT", "GETNAME"}, sameBytes}, {[]string{"CONFIG", "GET", "nosuch"}, sameBytes},
		{[]string{"HELLO"}, sameShape}, {[]string{"HELLO", "4"}, sameBytes}, {[]string{"GET", "nosuchkey"}, sameBytes},
		{[]string{"HELLO", "2"}, sameShape}, {[]string{"GET", "nosuchkey"}, sameBytes}, {[]string{"HGETALL", "h"}, sameBytes},
		{[]string{"ZSCORE", "z", "m"}, sameBytes}, {[]string{"ZRANGE", "z", "0", "-1", "WITHSCORES"}, sameBytes},
		{[]string{"MGET", "h", "nosuchkey"}, sameBytes}, {[]string{"CLIENT", "GETNAME"}, sameBytes},
		{[]string{"CONFIG", "GET", "nosuch"}, sameBytes}, {[]string{"COMMAND", "INFO", "nosuch"}, sameBytes},
		{[]string{"EVAL", "return {double=1.5}", "1", "z"}, sameBytes}, {[]string{"HELLO"}, sameShape},
		{[]string{"HELLO", "3", "SETNAME", "n3"}, sameShape}, {[]string{"CLIENT", "GETNAME"}, sameBytes},
		{[]string{"HGETALL", "h"}, sameBytes},
	}
	runLocalSteps(t, viaProxy, viaRedis, steps)
	// The fields of the proxy's HELLO 3 answer that a client reads.
	hello := viaProxy.DoAny("HELLO", "3")
	for _, part := range []string{"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$", "$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:",
		"$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"} {
		if !strings.Contains(hello, part) {
			t.Errorf("HELLO 3: %q lacks %q", hello, part)
		}
	}
	if got := proxytest.Shape(viaProxy.DoAny("HELLO", "2")); got != helloShape2 {
		t.Errorf("HELLO 2: %s, want %s", got, helloShape2)
	}
}

// TestRESP3HelloAuth checks HELLO's AUTH against a pool with redis_auth
// and a redis-server with the same requirepass: the refusals' texts, that
// a refused HELLO 3 leaves the protocol as it was, and that HELLO 3 AUTH
// both authenticates and switches.
func TestRESP3HelloAuth(t *testing.T) {
	const pw = "s3cret"
	backends := proxytest.StartRedisBackends(t, 2, "--requirepass", pw)
	f := proxytest.StartFixture(t, proxytest.Pool{Auth: pw}, backends)
	direct := testservers.Redis(t, "--requirepass", pw)
	viaProxy, viaRedis := proxytest.Dial(t, f.Addr), proxytest.Dial(t, direct.Addr)
	steps := []localStep{
		{[]string{"HELLO", "3"}, sameBytes}, {[]string{"GET", "k"}, sameBytes},
		{[]string{"HELLO", "3", "AUTH", "default", "wrong"}, sameBytes},
		{[]string{"HELLO", "3", "AUTH", "nosuchuser", pw}, sameBytes},
		{[]string{"HELLO", "3", "AUTH", "default"}, sameBytes}, {[]string{"HELLO", "4", "AUTH", "default", pw}, sameBytes},
		{[]string{"AUTH", pw}, sameBytes}, {[]string{"GET", "k"}, sameBytes}, // still RESP2: "$-1"
		{[]string{"HELLO", "3", "AUTH", "default", pw, "SETNAME", "authed"}, sameShape},
		{[]string{"GET", "k"}, sameBytes}, {[]string{"CLIENT", "GETNAME"}, sameBytes},
		{[]string{"HELLO", "2", "AUTH", "default", pw}, sameShape}, {[]string{"GET", "k"}, sameBytes},
	}
	runLocalSteps(t, viaProxy, viaRedis, steps)
	// A new connection authenticates and switches in one HELLO.
	fresh := proxytest.Dial(t, f.Addr)
	if got := proxytest.Shape(fresh.DoAny("HELLO", "3", "AUTH", "default", pw)); got != helloShape3 {
		t.Errorf("HELLO 3 AUTH on a new connection: %s, want %s", got, helloShape3)
	}
	if got := fresh.DoAny("MGET", "k", "k2"); got != "*2\r\n_\r\n_\r\n" {
		t.Errorf("MGET after HELLO 3 AUTH: %q, want two RESP3 nulls", got)
	}
}
