package proxy_test

import (
	"bufio"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/proxy"
)

// TestRESP3ProxyErrors checks every kind of error the proxy words itself,
// on a RESP2 and a RESP3 connection: a simple error ('-') in both, the
// same bytes in both (RESP3 changed no error), and the connection still in
// step after it. The last ones come from a pool server that was killed.
func TestRESP3ProxyErrors(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 2, proxytest.Pool{HashTag: "{}"})
	k1, k2 := keysOnTwoServers(t, f)
	resp2, resp3 := proxytest.Dial(t, f.Addr), proxytest.Dial(t, f.Addr)
	if got := proxytest.Shape(resp3.DoAny("HELLO", "3")); got != helloShape3 {
		t.Fatalf("HELLO 3: %s", got)
	}
	cmds := [][]string{
		{"EXEC"}, {"FLUSHALL"}, {"CLIENT", "KILL", "x"}, {"CLIENT", "TRACKING", "ON"},
		{"CONFIG", "SET", "maxmemory", "0"}, {"SELECT", "1"}, {"EVAL", "return 1", "0"},
		{"EVAL", "return 1", "5", "k"}, {"MSETNX", k1, "a", k2, "b"}, {"RENAME", k1, k2}, {"FOOBAR", "x"},
		{strings.Repeat("X", 100)}, {"GET"}, {"PING", "a", "b"}, {"COMMAND", "FOO"}, {"HELLO", "4"},
		{"HELLO", "x"}, {"HELLO", "3", "BAD"}, {"AUTH", "pw"}, {"DEBUG", "SLEEP", "0"}, {"XREAD", "BLOCK", "0", "STREAMS", k1, k2, "$", "$"},
	}
	check := func(stage string) {
		t.Helper()
		for _, cmd := range cmds {
			got2, got3 := resp2.DoAny(cmd...), resp3.DoAny(cmd...)
			if stage == "a killed server" {
				// Each protocol has its own server connection: one may
				// have seen the server close it, the other a refused
				// dial. The kind of error and the server are the same.
				got2, got3 = errorKind(got2), errorKind(got3)
			}
			if got3 != got2 || !strings.HasPrefix(got3, "-") || strings.Count(got3, "\r\n") != 1 {
				t.Errorf("%s %q:\nRESP3: %q\nRESP2: %q\nwant the same simple error", stage, cmd, got3, got2)
			}
		}
		if got2, got3 := resp2.DoAny("PING"), resp3.DoAny("PING"); got2 != "+PONG\r\n" || got3 != "+PONG\r\n" {
			t.Errorf("%s: PING after the errors: %q, %q", stage, got2, got3)
		}
	}
	check("live servers")
	// A killed server: forwarding errors, alone and inside split commands.
	live, dead := k1, k2
	for _, b := range f.Backends {
		if r, err := testservers.Do(b.Addr, "EXISTS", dead); err == nil && r == ":1" {
			proxytest.KillServer(t, b)
		}
	}
	cmds = [][]string{{"GET", dead}, {"MGET", live, dead}, {"DEL", live, dead}, {"MSET", live, "1", dead, "2"}, {"EXISTS", dead, live}}
	check("a killed server")
	if got := resp3.DoAny("GET", live); got != "$1\r\n1\r\n" && got != "_\r\n" {
		t.Errorf("GET of a key on the live server: %q", got)
	}
}

// errorKind keeps of an error reply its kind and server ("-ERR server
// unavailable: host:port"), dropping the cause.
func errorKind(reply string) string {
	parts := strings.SplitN(reply, ": ", 3)
	if len(parts) < 3 {
		return reply
	}
	return parts[0] + ": " + parts[1] + "\r\n"
}

// mixedExpect is a request and its reply in RESP2 and in RESP3.
type mixedExpect struct {
	args         []string
	resp2, resp3 string
}

// TestRESP3MixedClients runs RESP2 and RESP3 clients at once through one
// pool of three servers, each sending pipelines of replies that differ
// between the protocols, and checks that every client gets every reply in
// its own protocol: no reply crosses from a connection of one protocol to
// a client of the other.
func TestRESP3MixedClients(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 3, proxytest.Pool{HashTag: "{}"})
	setup := proxytest.Dial(t, f.Addr)
	for _, cmd := range [][]string{{"HSET", "mx:h", "a", "1"}, {"ZADD", "mx:z", "1.5", "m"}, {"MSET", "mx:1", "a", "mx:2", "b"}} {
		if got := setup.Do(cmd...); strings.HasPrefix(got, "-") {
			t.Fatalf("%q: %q", cmd, got)
		}
	}
	script := []mixedExpect{
		{[]string{"HGETALL", "mx:h"}, "*2\r\n$1\r\na\r\n$1\r\n1\r\n", "%1\r\n$1\r\na\r\n$1\r\n1\r\n"},
		{[]string{"ZSCORE", "mx:z", "m"}, "$3\r\n1.5\r\n", ",1.5\r\n"},
		{[]string{"GET", "mx:missing"}, "$-1\r\n", "_\r\n"},
		{[]string{"MGET", "mx:1", "mx:missing", "mx:2"}, "*3\r\n$1\r\na\r\n$-1\r\n$1\r\nb\r\n", "*3\r\n$1\r\na\r\n_\r\n$1\r\nb\r\n"},
		{[]string{"CLIENT", "GETNAME"}, "$-1\r\n", "_\r\n"},
	}
	const clients, rounds, perWrite = 6, 200, 10
	start := time.Now()
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func(proto3 bool) {
			defer wg.Done()
			errs <- mixedClient(f.Addr, proto3, script, rounds, perWrite)
		}(i%2 == 1)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	t.Logf("%d clients (half RESP3) x %d requests in %v", clients, rounds*perWrite*len(script), time.Since(start).Round(time.Millisecond))
}

// mixedClient runs rounds of perWrite copies of script, each round in one
// write, on a new connection in RESP3 or RESP2, and returns the first
// reply that is not the one its protocol expects.
func mixedClient(addr string, proto3 bool, script []mixedExpect, rounds, perWrite int) error {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(nc)
	if proto3 {
		if _, err := nc.Write(proxytest.EncodeCommand(nil, "HELLO", "3")); err != nil {
			return err
		}
		if hello, err := proxytest.ReadAny(r); err != nil || proxytest.Shape(hello) != helloShape3 {
			return fmt.Errorf("HELLO 3: %q, %v", hello, err)
		}
	}
	var req []byte
	for range perWrite {
		for _, st := range script {
			req = proxytest.EncodeCommand(req, st.args...)
		}
	}
	for round := range rounds {
		if _, err := nc.Write(req); err != nil {
			return err
		}
		for i := range perWrite * len(script) {
			st := script[i%len(script)]
			want := st.resp2
			if proto3 {
				want = st.resp3
			}
			got, err := proxytest.ReadAny(r)
			if err != nil || got != want {
				return fmt.Errorf("RESP3 %v, round %d, %q: %q (%v), want %q", proto3, round, st.args, got, err, want)
			}
		}
	}
	return nil
}

// TestRESP3RedisDBAndReload checks a RESP3 client of a pool with redis_db
// before and after a reload adds a server: its keys land in that database
// of the server that owns them, and its replies stay RESP3, from the new
// server too.
func TestRESP3RedisDBAndReload(t *testing.T) {
	b := proxytest.StartRedisBackends(t, 3)
	listen, path := proxytest.FreeListen(t), filepath.Join(t.TempDir(), "shardproxy.yml")
	pool := func(n int) string {
		// Named servers: the keys' placement does not hang on ports.
		lines := proxytest.ServerLines(b[:n], nil, []string{"a", "b", "c"}[:n])
		return proxytest.Pool{DB: 2, Servers: lines}.YAML("alpha", listen)
	}
	proxytest.WriteFile(t, path, pool(2))
	px := proxytest.StartProxyOpts(t, pool(2), proxy.Options{ConfigPath: path})
	rc := proxytest.Dial(t, px.Addr(0).String())
	if got := proxytest.Shape(rc.DoAny("HELLO", "3")); got != helloShape3 {
		t.Fatalf("HELLO 3: %s", got)
	}
	write := func(prefix string) []string {
		t.Helper()
		var keys []string
		for i := range 30 {
			keys = append(keys, fmt.Sprintf("%d:%s", i, prefix)) // varied first bytes spread over the ring
		}
		for _, k := range keys {
			if got := rc.DoAny("HSET", k, "f", "v"); got != ":1\r\n" {
				t.Fatalf("HSET %s: %q", k, got)
			}
		}
		for _, k := range keys {
			if got := rc.DoAny("HGETALL", k); got != "%1\r\n$1\r\nf\r\n$1\r\nv\r\n" {
				t.Fatalf("HGETALL %s: %q, want a RESP3 map", k, got)
			}
		}
		args := append([]string{"MGET", prefix + ":missing"}, keys...)
		if got := rc.DoAny(args...); !strings.HasPrefix(got, "*31\r\n_\r\n_\r\n_\r\n") {
			t.Errorf("MGET: %q, want RESP3 nulls", proxytest.Short(got))
		}
		return keys
	}
	before := write("db")
	checkKeysInDB(t, b[:2], "", 2, before...)
	proxytest.WriteFile(t, path, pool(3))
	if err := px.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	after := write("db2")
	checkKeysInDB(t, b, "", 2, after...)
	on3 := 0
	for _, k := range after {
		if proxytest.BackendDo(t, b[2].Addr, []string{"SELECT", "2"}, []string{"EXISTS", k}) == ":1\r\n" {
			on3++
		}
	}
	if on3 == 0 {
		t.Errorf("no key written after the reload landed on the added server")
	}
	t.Logf("%d of %d keys written after the reload are on the added server", on3, len(after))
}
