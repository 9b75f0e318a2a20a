package proxy_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// TestRESP3Auth checks HELLO's authentication in front of servers that
// require a password, as Redis answers it, and that the proxy's RESP3
// server connections log in (AUTH before HELLO 3) and answer in RESP3.
func TestRESP3Auth(t *testing.T) {
	const password = "pw3"
	backends := proxytest.StartRedisBackends(t, 3, "--requirepass", password)
	rp := proxytest.Pool{Auth: password, HashTag: "{}", Servers: proxytest.ServerLines(backends, nil, nil)}
	px := proxytest.StartProxy(t, rp.YAML("auth3", proxytest.FreeListen(t)))
	rc := proxytest.Dial(t, px.Addr(0).String())
	steps := []struct {
		name, want string
		args       []string
	}{
		{"HELLO 3 before AUTH", "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n", []string{"HELLO", "3"}},
		{"still RESP2", "-NOAUTH Authentication required.\r\n", []string{"GET", "k"}},
		{"HELLO 3 wrong password", "-WRONGPASS invalid username-password pair or user is disabled.\r\n", []string{"HELLO", "3", "AUTH", "default", "nope"}},
		{"HELLO 3 bad name", "-ERR Client names cannot contain spaces, newlines or special characters.\r\n", []string{"HELLO", "3", "AUTH", "default", password, "SETNAME", "a b"}},
		{"GET after the bad name", "$-1\r\n", []string{"GET", "missing"}},
		{"HELLO 3 AUTH SETNAME", "", []string{"HELLO", "3", "AUTH", "default", password, "SETNAME", "app"}},
		{"HSET", ":2\r\n", []string{"HSET", "h", "a", "1", "b", "2"}},
		{"HGETALL is a map", "%2\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n", []string{"HGETALL", "h"}},
		{"GET missing is RESP3's null", "_\r\n", []string{"GET", "missing"}},
		{"CLIENT GETNAME", "$3\r\napp\r\n", []string{"CLIENT", "GETNAME"}},
		{"MSET over 3 servers", "+OK\r\n", []string{"MSET", "k1", "a", "k2", "b", "k3", "c", "k4", "d"}},
		{"MGET merges RESP3 nulls", "*5\r\n$1\r\na\r\n_\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n", []string{"MGET", "k1", "x", "k2", "k3", "k4"}},
		{"ZSCORE is a double", ",1.5\r\n", []string{"ZSCORE", "z", "m"}},
		{"HELLO 2", "", []string{"HELLO", "2"}},
		{"HGETALL in RESP2", "*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n", []string{"HGETALL", "h"}},
		{"GET missing in RESP2", "$-1\r\n", []string{"GET", "missing"}},
	}
	proxytest.BackendDo(t, backends[0].Addr, []string{"AUTH", password}, []string{"FLUSHALL"})
	if got := rc.DoAny("ZADD", "z", "1.5", "m"); got != "-NOAUTH Authentication required.\r\n" {
		t.Fatalf("ZADD before AUTH: %q", got)
	}
	for i, s := range steps {
		if s.name == "ZSCORE is a double" {
			// set up under RESP3, as the client is authenticated now
			rc.DoAny("ZADD", "z", "1.5", "m")
		}
		got := rc.DoAny(s.args...)
		switch {
		case s.want != "" && got != s.want:
			t.Errorf("%d %s: %q, want %q", i, s.name, got, s.want)
		case s.want == "" && s.args[1] == "3" && !strings.HasPrefix(got, "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"):
			t.Errorf("%s: %q, want Redis's map", s.name, got)
		case s.want == "" && s.args[1] == "2" && !strings.HasPrefix(got, "*14\r\n$6\r\nserver\r\n"):
			t.Errorf("%s: %q, want Redis's array", s.name, got)
		}
	}
	// The proxy's server connections of RESP3 clients: logged in, RESP3.
	var list string
	for _, b := range backends {
		list += proxytest.BackendDo(t, b.Addr, []string{"AUTH", password}, []string{"CLIENT", "LIST"})
	}
	if !strings.Contains(list, " resp=3\n") {
		t.Errorf("no RESP3 server connection on the backends:\n%s", list)
	}
}

// TestRESP3ACLUser checks a pool with redis_username: RESP3 clients'
// server connections log in as that user too.
func TestRESP3ACLUser(t *testing.T) {
	b := aclBackend(t)
	px := proxytest.StartProxy(t, proxytest.PoolYAML(proxytest.FreeListen(t), []*testservers.Server{b}, "redis_username: app", "redis_auth: secret"))
	rc := proxytest.Dial(t, px.Addr(0).String())
	if got := rc.DoAny("HELLO", "3", "AUTH", "app", "secret"); !strings.HasPrefix(got, "%7\r\n") {
		t.Fatalf("HELLO 3 AUTH app: %q", got)
	}
	rc.DoAny("SADD", "s", "x")
	if got := rc.DoAny("SMEMBERS", "s"); got != "~1\r\n$1\r\nx\r\n" {
		t.Fatalf("SMEMBERS: %q, want a RESP3 set", got)
	}
	list := proxytest.BackendDo(t, b.Addr, []string{"AUTH", "app", "secret"}, []string{"CLIENT", "LIST"})
	found := false
	for _, line := range strings.Split(list, "\n") {
		found = found || strings.Contains(line, " user=app ") && strings.HasSuffix(strings.TrimSpace(line), " resp=3") && !strings.Contains(line, "cmd=client|list")
	}
	if !found {
		t.Errorf("no RESP3 server connection of user app:\n%s", list)
	}
}

// TestRESP3SwitchInPipeline sends, in one write, requests around HELLO 3
// and HELLO 2 many times: each GET sees the SET sent before it, although
// the two run on server connections of different protocols.
func TestRESP3SwitchInPipeline(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 2, proxytest.Pool{})
	rc := proxytest.Dial(t, f.Addr)
	const rounds = 300
	var req []byte
	for i := range rounds {
		v := fmt.Sprint(i)
		req = proxytest.EncodeCommand(req, "SET", "sw", v)
		req = proxytest.EncodeCommand(req, "HELLO", "3")
		req = proxytest.EncodeCommand(req, "GET", "sw")
		req = proxytest.EncodeCommand(req, "SET", "sw", v+"b")
		req = proxytest.EncodeCommand(req, "HELLO", "2")
		req = proxytest.EncodeCommand(req, "GET", "sw")
	}
	go rc.Net.Write(req)
	for i := range rounds {
		v := fmt.Sprint(i)
		want := []string{"+OK\r\n", "%7", proxytest.Bulk(v), "+OK\r\n", "*14", proxytest.Bulk(v + "b")}
		for j, w := range want {
			if got := rc.ReadAny(); !strings.HasPrefix(got, w) {
				t.Fatalf("round %d, reply %d: %q, want %q", i, j, got, w)
			}
		}
	}
}

// TestRESP3TLSParked checks a RESP3 client over TLS that parks between
// requests: its protocol stays RESP3 (go-redis decodes HGETALL's map).
func TestRESP3TLSParked(t *testing.T) {
	pki := proxytest.NewPKI(t, "proxy")
	backends := proxytest.StartRedisBackends(t, 2)
	px := proxytest.StartProxy(t, proxytest.PoolYAML(proxytest.FreeListen(t), backends, "tls_cert_file: "+pki.ServerCert,
		"tls_key_file: "+pki.ServerKey, "client_park_after: 50"))
	for _, tc := range []struct {
		name string
		tls  *tls.Config
		addr string
	}{{"tls", pki.ClientConfig(false), px.Addr(0).String()}} {
		c := redis.NewClient(&redis.Options{Addr: tc.addr, TLSConfig: tc.tls, Protocol: 3, PoolSize: 1, DisableIdentity: true})
		t.Cleanup(func() { c.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := c.HSet(ctx, "h", "f", "v").Err(); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			time.Sleep(200 * time.Millisecond) // parks
			v, err := c.Do(ctx, "HGETALL", "h").Result()
			if err != nil {
				t.Fatal(err)
			}
			if m, ok := v.(map[any]any); !ok || m["f"] != "v" {
				t.Fatalf("%s, after parking %d: HGETALL gave %#v, want a map (RESP3)", tc.name, i, v)
			}
		}
	}
}
