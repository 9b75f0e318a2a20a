package proxy_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// replyCheck is an expected reply: exact bytes, or a prefix, and text it
// must contain.
type replyCheck struct {
	want, prefix, contains string
}

func (c replyCheck) check(t *testing.T, what string, got string) {
	t.Helper()
	switch {
	case c.want != "" && got != c.want:
		t.Errorf("%s: got %q, want %q", what, got, c.want)
	case c.prefix != "" && !strings.HasPrefix(got, c.prefix):
		t.Errorf("%s: got %q, want a reply starting with %q", what, got, c.prefix)
	case c.contains != "" && !strings.Contains(got, c.contains):
		t.Errorf("%s: got %q, want it to contain %q", what, got, c.contains)
	}
}

// keysOnTwoServers returns two keys that the proxy places on different
// servers, found by writing probes and looking for them on the backends.
func keysOnTwoServers(t *testing.T, f *proxytest.RedisFixture) (string, string) {
	t.Helper()
	rc := proxytest.Dial(t, f.Addr)
	owner := map[int]string{}
	for i := 0; i < 100 && len(owner) < 2; i++ {
		k := fmt.Sprintf("%d:probe", i) // varied first bytes spread over the ring
		if r := rc.Do("SET", k, "1"); r != "+OK\r\n" {
			t.Fatalf("SET %s: %q", k, r)
		}
		for bi, b := range f.Backends {
			if r, err := testservers.Do(b.Addr, "EXISTS", k); err == nil && r == ":1" {
				owner[bi] = k
			}
		}
	}
	if len(owner) < 2 {
		t.Fatalf("100 keys all landed on one server")
	}
	var keys []string
	for _, k := range owner {
		keys = append(keys, k)
	}
	return keys[0], keys[1]
}

// localCase is a command the proxy answers itself or refuses.
type localCase struct {
	name string
	args []string
	replyCheck
}

// localCases lists local commands and refusals; k1 and k2 are keys on two
// different servers.
func localCases(k1, k2 string) []localCase {
	notSupported := func(name string) replyCheck {
		return replyCheck{want: fmt.Sprintf("-ERR command '%s' is not supported by the proxy\r\n", name)}
	}
	return []localCase{
		{"ping", []string{"PING"}, replyCheck{want: "+PONG\r\n"}},
		{"ping message", []string{"PING", "hello there"}, replyCheck{want: proxytest.Bulk("hello there")}},
		{"echo", []string{"ECHO", "x\r\ny"}, replyCheck{want: proxytest.Bulk("x\r\ny")}},
		{"select 0", []string{"SELECT", "0"}, replyCheck{want: "+OK\r\n"}},
		{"select 1", []string{"SELECT", "1"}, replyCheck{prefix: "-ERR SELECT is not allowed"}},
		{"hello", []string{"HELLO"}, replyCheck{prefix: "*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n", contains: "$5\r\nproto\r\n:2\r\n"}},
		{"hello 2", []string{"HELLO", "2"}, replyCheck{prefix: "*14\r\n", contains: "$5\r\nproto\r\n:2\r\n"}},
		{"hello 2 setname", []string{"HELLO", "2", "SETNAME", "via-hello"}, replyCheck{prefix: "*14\r\n"}},
		{"getname after hello", []string{"CLIENT", "GETNAME"}, replyCheck{want: proxytest.Bulk("via-hello")}},
		{"hello 4", []string{"HELLO", "4"}, replyCheck{want: "-NOPROTO unsupported protocol version\r\n"}},
		{"hello 1", []string{"HELLO", "1"}, replyCheck{want: "-NOPROTO unsupported protocol version\r\n"}},
		{"hello not a number", []string{"HELLO", "x"}, replyCheck{prefix: "-ERR Protocol version is not an integer"}},
		{"client setname", []string{"CLIENT", "SETNAME", "app-1"}, replyCheck{want: "+OK\r\n"}},
		{"client getname", []string{"CLIENT", "GETNAME"}, replyCheck{want: proxytest.Bulk("app-1")}},
		{"client setname spaces", []string{"CLIENT", "SETNAME", "a b"}, replyCheck{prefix: "-ERR Client names cannot contain spaces"}},
		{"client setinfo", []string{"CLIENT", "SETINFO", "LIB-NAME", "go-redis"}, replyCheck{want: "+OK\r\n"}},
		{"client setinfo ver", []string{"CLIENT", "SETINFO", "LIB-VER", "9.0"}, replyCheck{want: "+OK\r\n"}},
		{"client kill", []string{"CLIENT", "KILL", "x"}, replyCheck{prefix: "-ERR 'client kill' is not supported"}},
		{"command", []string{"COMMAND"}, replyCheck{prefix: "*"}},
		{"command count", []string{"COMMAND", "COUNT"}, replyCheck{prefix: ":"}},
		{"info", []string{"INFO"}, replyCheck{prefix: "$", contains: "redis_version:"}},
		{"config get", []string{"CONFIG", "GET", "maxmemory"}, replyCheck{want: "*0\r\n"}},
		{"config set", []string{"CONFIG", "SET", "maxmemory", "1"}, replyCheck{prefix: "-ERR"}},
		{"auth without password", []string{"AUTH", "secret"}, replyCheck{prefix: "-ERR"}},
		{"exec without multi", []string{"EXEC"}, replyCheck{want: "-ERR EXEC without MULTI\r\n"}},
		{"discard without multi", []string{"DISCARD"}, replyCheck{want: "-ERR DISCARD without MULTI\r\n"}},
		{"unwatch", []string{"UNWATCH"}, replyCheck{want: "+OK\r\n"}},
		{"unsubscribe, none", []string{"UNSUBSCRIBE"}, replyCheck{want: "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n"}},
		{"punsubscribe, none", []string{"PUNSUBSCRIBE"}, replyCheck{want: "*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n"}},
		{"flushall", []string{"FLUSHALL"}, replyCheck{prefix: "-ERR 'flushall' would empty every server of pool alpha"}},
		{"flushdb async", []string{"FLUSHDB", "ASYNC"}, replyCheck{prefix: "-ERR 'flushdb' would empty every server"}},
		{"xinfo help", []string{"XINFO", "HELP"}, replyCheck{want: "-ERR 'xinfo help' without keys cannot be routed by the proxy\r\n"}},
		{"xinfo unknown", []string{"xinfo", "foo", "s"}, replyCheck{want: "-ERR unknown subcommand 'foo'. Try XINFO HELP.\r\n"}},
		{"xgroup arity", []string{"XGROUP", "create", "s"}, replyCheck{want: "-ERR wrong number of arguments for 'xgroup|create' command\r\n"}},
		{"xread unbalanced", []string{"XREAD", "STREAMS", "a", "b", "c"}, replyCheck{prefix: "-ERR Unbalanced XREAD list of streams"}},
		{"xread syntax", []string{"XREAD", "COUNT", "1", "a", "0"}, replyCheck{want: "-ERR syntax error\r\n"}},
		{"xread across servers", []string{"XREAD", "STREAMS", k1, k2, "0", "0"}, replyCheck{prefix: "-ERR the keys of 'xread' live on different servers"}},
		{"scan bad cursor", []string{"SCAN", "x"}, replyCheck{want: "-ERR invalid cursor\r\n"}},
		{"shutdown", []string{"SHUTDOWN"}, notSupported("shutdown")},
		{"eval across servers", []string{"EVAL", "return 1", "2", k1, k2}, replyCheck{prefix: "-ERR the keys of "}},
		{"rename across servers", []string{"RENAME", k1, k2}, replyCheck{prefix: "-ERR the keys of "}},
		{"eval without keys", []string{"EVAL", "return 1", "0"}, replyCheck{prefix: "-ERR 'eval' without keys"}},
		{"eval bad numkeys", []string{"EVAL", "return 1", "5", "a"}, replyCheck{prefix: "-ERR numkeys"}},
		{"unknown command", []string{"FOOBAR", "a", "b"}, replyCheck{want: "-ERR unknown command 'FOOBAR', with args beginning with: 'a' 'b' \r\n"}},
		{"long unknown command", []string{strings.Repeat("X", 100)}, replyCheck{prefix: "-ERR unknown command"}},
		{"get arity", []string{"GET"}, replyCheck{want: "-ERR wrong number of arguments for 'get' command\r\n"}},
		{"set arity", []string{"SET", "a"}, replyCheck{want: "-ERR wrong number of arguments for 'set' command\r\n"}},
		{"mset arity", []string{"MSET", "a", "1", "b"}, replyCheck{want: "-ERR wrong number of arguments for 'mset' command\r\n"}},
		{"msetnx arity", []string{"MSETNX", "{t}a", "1", "{t}b"}, replyCheck{want: "-ERR wrong number of arguments for 'msetnx' command\r\n"}},
		{"echo arity", []string{"ECHO"}, replyCheck{want: "-ERR wrong number of arguments for 'echo' command\r\n"}},
		{"ping arity", []string{"PING", "a", "b"}, replyCheck{want: "-ERR wrong number of arguments for 'ping' command\r\n"}},
		{"client arity", []string{"CLIENT"}, replyCheck{want: "-ERR wrong number of arguments for 'client' command\r\n"}},
	}
}

// TestLocalCommandsAndRefusals sends each command on one raw connection
// and checks the reply, then that the same connection still answers PING.
func TestLocalCommandsAndRefusals(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 4, proxytest.Pool{HashTag: "{}"})
	tests := localCases(keysOnTwoServers(t, f))
	rc := proxytest.Dial(t, f.Addr)
	for _, tc := range tests {
		tc.check(t, tc.name, rc.Do(tc.args...))
		if r := rc.Do("PING"); r != "+PONG\r\n" {
			t.Fatalf("%s: PING afterwards: %q", tc.name, r)
		}
	}
	// Everything again in one write: the replies stay in order.
	var req []byte
	for _, tc := range tests {
		req = proxytest.EncodeCommand(req, tc.args...)
		req = proxytest.EncodeCommand(req, "ECHO", tc.name)
	}
	rc = proxytest.Dial(t, f.Addr)
	rc.Write(req)
	for _, tc := range tests {
		tc.check(t, tc.name+" (pipelined)", rc.Read())
		if r := rc.Read(); r != proxytest.Bulk(tc.name) {
			t.Fatalf("%s (pipelined): ECHO afterwards: %q", tc.name, r)
		}
	}
}

// TestCommandCount checks that COMMAND COUNT answers the size of the
// command table, which knows the common Redis commands.
func TestCommandCount(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 1, proxytest.Pool{})
	r := proxytest.Dial(t, f.Addr).Do("COMMAND", "COUNT")
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(r, ":"), "\r\n"))
	if err != nil || n < 150 {
		t.Errorf("COMMAND COUNT: %q, want an integer of at least 150", r)
	}
}

// TestQuit checks that QUIT is answered +OK after every earlier reply, and
// that the connection is then closed without answering what followed.
func TestQuit(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 2, proxytest.Pool{})
	rc := proxytest.Dial(t, f.Addr)
	var req []byte
	req = proxytest.EncodeCommand(req, "SET", "quit:a", "1")
	req = proxytest.EncodeCommand(req, "PING")
	req = proxytest.EncodeCommand(req, "QUIT")
	req = proxytest.EncodeCommand(req, "SET", "quit:b", "2")
	rc.Write(req)
	for i, want := range []string{"+OK\r\n", "+PONG\r\n", "+OK\r\n"} {
		if got := rc.Read(); got != want {
			t.Fatalf("reply %d: %q, want %q", i, got, want)
		}
	}
	rc.ExpectClosed()
	if r := proxytest.Dial(t, f.Addr).Do("EXISTS", "quit:a", "quit:b"); r != ":1\r\n" {
		t.Errorf("EXISTS quit:a quit:b: %q, want :1 (nothing after QUIT runs)", r)
	}
}

// TestInlineCommands sends commands as redis-cli and telnet users type
// them, alone and mixed with multibulk requests in one write.
func TestInlineCommands(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 4, proxytest.Pool{})
	tests := []struct {
		name, in string
		want     []string
	}{
		{"set", "SET a b\r\n", []string{"+OK\r\n"}},
		{"get", "GET a\r\n", []string{proxytest.Bulk("b")}},
		{"lower case, LF only", "get a\n", []string{proxytest.Bulk("b")}},
		{"extra blanks", "  SET   c   d  \r\n", []string{"+OK\r\n"}},
		{"double quotes", "SET \"key with space\" \"v\\x41\\n\\\"\"\r\n", []string{"+OK\r\n"}},
		{"single quotes", "GET 'key with space'\r\n", []string{proxytest.Bulk("vA\n\"")}},
		{"empty line skipped", "\r\n\r\nPING\r\n", []string{"+PONG\r\n"}},
		{"mixed", "MGET a c\r\n*2\r\n$3\r\nGET\r\n$1\r\nc\r\nPING x\r\n",
			[]string{proxytest.Array(proxytest.Bulk("b"), proxytest.Bulk("d")), proxytest.Bulk("d"), proxytest.Bulk("x")}},
		{"unknown", "NOPE 1\r\n", []string{"-ERR unknown command 'NOPE', with args beginning with: '1' \r\n"}},
		{"after unknown", "EXISTS a c\r\n", []string{":2\r\n"}},
	}
	rc := proxytest.Dial(t, f.Addr)
	for _, tc := range tests {
		rc.Write([]byte(tc.in))
		for i, want := range tc.want {
			if got := rc.Read(); got != want {
				t.Errorf("%s: reply %d: %q, want %q", tc.name, i, got, want)
			}
		}
	}
}
