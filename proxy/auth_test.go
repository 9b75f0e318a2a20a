package proxy_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// TestRedisAuthAndDB runs a pool with redis_auth and redis_db in front of
// servers that require a password: clients must AUTH with the pool's
// password, and data lands in the configured database.
func TestRedisAuthAndDB(t *testing.T) {
	const password = "s3cret pass"
	backends := proxytest.StartRedisBackends(t, 4, "--requirepass", password)
	rp := proxytest.Pool{Auth: fmt.Sprintf("%q", password), DB: 3, Servers: proxytest.ServerLines(backends, nil, nil)}
	px := proxytest.StartProxy(t, rp.YAML("auth", proxytest.FreeListen(t)))
	addr := px.Addr(0).String()

	rc := proxytest.Dial(t, addr)
	steps := []struct {
		name string
		args []string
		want string
	}{
		{"get before auth", []string{"GET", "auth:k"}, "-NOAUTH Authentication required.\r\n"},
		{"ping before auth", []string{"PING"}, "-NOAUTH Authentication required.\r\n"},
		{"wrong password", []string{"AUTH", "nope"}, "-ERR invalid password\r\n"},
		{"still refused", []string{"SET", "auth:k", "v"}, "-NOAUTH Authentication required.\r\n"},
		{"wrong user", []string{"AUTH", "admin", password}, "-ERR invalid password\r\n"},
		{"right password", []string{"AUTH", password}, "+OK\r\n"},
		{"set", []string{"SET", "auth:k", "v"}, "+OK\r\n"},
		{"get", []string{"GET", "auth:k"}, proxytest.Bulk("v")},
		{"mset", []string{"MSET", "auth:1", "a", "auth:2", "b", "auth:3", "c", "auth:4", "d"}, "+OK\r\n"},
		{"mget", []string{"MGET", "auth:1", "auth:2", "auth:3", "auth:4"}, proxytest.Array(proxytest.Bulk("a"), proxytest.Bulk("b"), proxytest.Bulk("c"), proxytest.Bulk("d"))},
		{"select refused", []string{"SELECT", "3"}, ""},
		{"auth with user", []string{"AUTH", "default", password}, "+OK\r\n"},
	}
	for _, st := range steps {
		got := rc.Do(st.args...)
		if st.want == "" {
			if !strings.HasPrefix(got, "-ERR") {
				t.Errorf("%s: %q, want an error", st.name, got)
			}
			continue
		}
		if got != st.want {
			t.Errorf("%s: %q, want %q", st.name, got, st.want)
		}
	}

	checkKeysInDB(t, backends, password, 3, "auth:k", "auth:1", "auth:2", "auth:3", "auth:4")

	// go-redis authenticates with HELLO 2 AUTH.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	good := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, Password: password, DisableIdentity: true})
	defer good.Close()
	if v, err := good.Get(ctx, "auth:k").Result(); err != nil || v != "v" {
		t.Errorf("go-redis with the password: GET auth:k = %q, %v", v, err)
	}
	bad := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, Password: "wrong", DisableIdentity: true, MaxRetries: -1})
	defer bad.Close()
	if err := bad.Get(ctx, "auth:k").Err(); err == nil {
		t.Errorf("go-redis with a wrong password: GET succeeded")
	}
}

// TestBackendRefusesPassword checks that a pool whose redis_auth the
// servers refuse answers each request with an error and keeps the client.
func TestBackendRefusesPassword(t *testing.T) {
	backends := proxytest.StartRedisBackends(t, 2, "--requirepass", "right")
	rp := proxytest.Pool{Auth: "wrong", Servers: proxytest.ServerLines(backends, nil, nil)}
	px := proxytest.StartProxy(t, rp.YAML("auth", proxytest.FreeListen(t)))
	rc := proxytest.Dial(t, px.Addr(0).String())
	if r := rc.Do("AUTH", "wrong"); r != "+OK\r\n" {
		t.Fatalf("AUTH with the pool's password: %q", r)
	}
	for i := 0; i < 3; i++ {
		if r := rc.Do("GET", fmt.Sprintf("k%d", i)); !strings.HasPrefix(r, "-ERR ") {
			t.Errorf("GET through a refused handshake: %q, want -ERR", r)
		}
		if r := rc.Do("PING"); r != "+PONG\r\n" {
			t.Fatalf("PING afterwards: %q", r)
		}
	}
}

// checkKeysInDB checks that every key is in database db of exactly one
// server, and in database 0 of none.
func checkKeysInDB(t *testing.T, backends []*testservers.Server, password string, db int, keys ...string) {
	t.Helper()
	auth := []string{"AUTH", password}
	for _, k := range keys {
		inDB, in0 := 0, 0
		for _, b := range backends {
			if proxytest.BackendDo(t, b.Addr, auth, []string{"SELECT", fmt.Sprint(db)}, []string{"EXISTS", k}) == ":1\r\n" {
				inDB++
			}
			if proxytest.BackendDo(t, b.Addr, auth, []string{"EXISTS", k}) == ":1\r\n" {
				in0++
			}
		}
		if inDB != 1 || in0 != 0 {
			t.Errorf("key %s: in db %d of %d servers, in db 0 of %d; want 1 and 0", k, db, inDB, in0)
		}
	}
}

// aclBackend starts a redis-server whose only enabled user is "app"
// with password "secret".
func aclBackend(t *testing.T) *testservers.Server {
	t.Helper()
	b := testservers.Redis(t, "--user", "app", "on", ">secret", "~*", "&*", "+@all", "--user", "default", "off")
	if r, _ := testservers.Do(b.Addr, "AUTH", "secret"); !strings.HasPrefix(r, "-WRONGPASS") {
		t.Fatalf("backend accepts the default user (%q): the test would prove nothing", r)
	}
	return b
}

// TestACLClientFlow checks a pool with redis_username: the proxy logs in to
// the server as that ACL user, and clients authenticate to the proxy with
// redis_auth, as user default or as the pool's user.
func TestACLClientFlow(t *testing.T) {
	b := aclBackend(t)
	px := proxytest.StartProxy(t, proxytest.PoolYAML(proxytest.FreeListen(t), []*testservers.Server{b}, "redis_username: app", "redis_auth: secret"))
	rc := proxytest.Dial(t, px.Addr(0).String())
	steps := []struct {
		name string
		args []string
		want string
	}{
		{"command before AUTH", []string{"GET", "acl:k"}, "-NOAUTH Authentication required.\r\n"},
		{"wrong password", []string{"AUTH", "guess"}, "-ERR invalid password\r\n"},
		{"still refused", []string{"SET", "acl:k", "v"}, "-NOAUTH Authentication required.\r\n"},
		{"right password", []string{"AUTH", "secret"}, "+OK\r\n"},
		{"SET reaches the server", []string{"SET", "acl:k", "v"}, "+OK\r\n"},
		{"GET", []string{"GET", "acl:k"}, proxytest.Bulk("v")},
		{"AUTH as the pool's user", []string{"AUTH", "app", "secret"}, "+OK\r\n"},
		{"AUTH as default", []string{"AUTH", "default", "secret"}, "+OK\r\n"},
		{"INCR after re-AUTH", []string{"INCR", "acl:n"}, ":1\r\n"},
		{"AUTH as another user", []string{"AUTH", "admin", "secret"}, "-ERR invalid password\r\n"},
		{"refused again", []string{"GET", "acl:k"}, "-NOAUTH Authentication required.\r\n"},
	}
	for _, s := range steps {
		if got := rc.Do(s.args...); got != s.want {
			t.Errorf("%s: %q, want %q", s.name, got, s.want)
		}
	}
	list := proxytest.BackendDo(t, b.Addr, []string{"AUTH", "app", "secret"}, []string{"CLIENT", "LIST"})
	if n := strings.Count(list, " user=app "); n < 2 {
		t.Errorf("backend has %d connections of user app; want the proxy's and ours:\n%s", n, list)
	}
}

// TestACLBackendRefuses checks that a server that refuses the proxy's
// login gives every request its reason.
func TestACLBackendRefuses(t *testing.T) {
	b := aclBackend(t)
	tests := []struct {
		name  string
		extra []string
		want  string
	}{
		{"password without user", []string{"redis_auth: secret"}, "WRONGPASS"},
		{"unknown user", []string{"redis_username: other", "redis_auth: secret"}, "WRONGPASS"},
		{"wrong password", []string{"redis_username: app", "redis_auth: nope"}, "WRONGPASS"},
		{"no AUTH at all", nil, "NOAUTH"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			px := proxytest.StartProxy(t, proxytest.PoolYAML(proxytest.FreeListen(t), []*testservers.Server{b}, tc.extra...))
			rc := proxytest.Dial(t, px.Addr(0).String())
			if len(tc.extra) > 0 {
				if got := rc.Do("AUTH", strings.TrimPrefix(tc.extra[len(tc.extra)-1], "redis_auth: ")); got != "+OK\r\n" {
					t.Fatalf("client AUTH: %q", got)
				}
			}
			got := rc.Do("GET", "acl:k")
			if tc.want == "NOAUTH" {
				// Without a handshake the connection comes up and the
				// server's own error is the reply.
				if !strings.HasPrefix(got, "-NOAUTH") {
					t.Fatalf("GET: %q; want the server's -NOAUTH", got)
				}
				return
			}
			if !strings.HasPrefix(got, "-ERR server unavailable: "+b.Addr+": handshake refused: -"+tc.want) {
				t.Fatalf("GET: %q; want -ERR server unavailable ... handshake refused: -%s", got, tc.want)
			}
		})
	}
}
