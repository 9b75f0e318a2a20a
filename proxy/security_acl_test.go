package proxy_test

import (
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

// secACLBackend starts a redis-server whose only enabled user is "app"
// with password "secret".
func secACLBackend(t *testing.T) *testservers.Server {
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
	b := secACLBackend(t)
	px := startProxy(t, poolYAML(freeListen(t), []*testservers.Server{b}, "redis_username: app", "redis_auth: secret"))
	rc := dialClient(t, px.Addr(0).String())
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
		{"GET", []string{"GET", "acl:k"}, bulk("v")},
		{"AUTH as the pool's user", []string{"AUTH", "app", "secret"}, "+OK\r\n"},
		{"AUTH as default", []string{"AUTH", "default", "secret"}, "+OK\r\n"},
		{"INCR after re-AUTH", []string{"INCR", "acl:n"}, ":1\r\n"},
		{"AUTH as another user", []string{"AUTH", "admin", "secret"}, "-ERR invalid password\r\n"},
		{"refused again", []string{"GET", "acl:k"}, "-NOAUTH Authentication required.\r\n"},
	}
	for _, s := range steps {
		if got := rc.do(s.args...); got != s.want {
			t.Errorf("%s: %q, want %q", s.name, got, s.want)
		}
	}
	list := backendDo(t, b.Addr, []string{"AUTH", "app", "secret"}, []string{"CLIENT", "LIST"})
	if n := strings.Count(list, " user=app "); n < 2 {
		t.Errorf("backend has %d connections of user app; want the proxy's and ours:\n%s", n, list)
	}
}

// TestACLBackendRefuses checks that a server that refuses the proxy's
// login gives every request its reason.
func TestACLBackendRefuses(t *testing.T) {
	b := secACLBackend(t)
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
			px := startProxy(t, poolYAML(freeListen(t), []*testservers.Server{b}, tc.extra...))
			rc := dialClient(t, px.Addr(0).String())
			if len(tc.extra) > 0 {
				if got := rc.do("AUTH", strings.TrimPrefix(tc.extra[len(tc.extra)-1], "redis_auth: ")); got != "+OK\r\n" {
					t.Fatalf("client AUTH: %q", got)
				}
			}
			got := rc.do("GET", "acl:k")
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
