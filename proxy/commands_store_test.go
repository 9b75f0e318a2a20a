package proxy_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// backendOf returns the index of the backend that holds key, which must
// exist on exactly one.
func backendOf(t *testing.T, f *proxytest.RedisFixture, key string) int {
	t.Helper()
	at := -1
	for i, b := range f.Backends {
		s, err := testservers.Do(b.Addr, "EXISTS", key)
		if err != nil {
			t.Fatalf("EXISTS %s on %s: %v", key, b.Addr, err)
		}
		if s == ":1" {
			if at >= 0 {
				t.Fatalf("%s on backends %d and %d", key, at, i)
			}
			at = i
		}
	}
	if at < 0 {
		t.Fatalf("%s on no backend", key)
	}
	return at
}

// keyOnOtherBackend returns a key named prefix<hex> that the proxy places on
// another backend than key. Names vary in several bytes: ketama over fnv1a
// keeps runs of names that differ only in their last digit together.
func keyOnOtherBackend(t *testing.T, f *proxytest.RedisFixture, rc *proxytest.Conn, key, prefix string) string {
	t.Helper()
	at := backendOf(t, f, key)
	for n := 0; n < 200; n++ {
		k := fmt.Sprintf("%s%x", prefix, uint32(n)*2654435761)
		rc.Do("SET", k, "probe")
		other := backendOf(t, f, k)
		rc.Do("DEL", k)
		if other != at {
			return k
		}
	}
	t.Fatalf("no key %s<hex> off the backend of %s", prefix, key)
	return ""
}

// TestStoreCommandsAcrossServers checks, through the proxy and real
// servers, that a command that writes a destination is refused when its
// source and destination live on different servers (it once ran on the
// source's server and wrote the destination there, where the proxy never
// reads it), and that with one hash tag it works and the destination is
// found through the proxy.
func TestStoreCommandsAcrossServers(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 2, proxytest.Pool{HashTag: "{}"})
	rc := proxytest.Dial(t, f.Addr)
	setup := map[string][]string{ // the source of each case, with {k} for its name
		"zset": {"ZADD", "{k}", "1", "a", "2", "b"},
		"list": {"RPUSH", "{k}", "3", "1", "2"},
		"geo":  {"GEOADD", "{k}", "15.087269", "37.502669", "Catania", "13.361389", "38.115556", "Palermo"},
	}
	cases := []struct {
		name, source string
		args         []string // {src} and {dst} stand for the keys
		want         string   // the reply with both keys under one hash tag
	}{
		{"ZUNIONSTORE", "zset", []string{"ZUNIONSTORE", "{dst}", "1", "{src}"}, ":2\r\n"},
		{"ZINTERSTORE", "zset", []string{"ZINTERSTORE", "{dst}", "1", "{src}"}, ":2\r\n"},
		{"ZDIFFSTORE", "zset", []string{"ZDIFFSTORE", "{dst}", "1", "{src}"}, ":2\r\n"},
		{"ZRANGESTORE", "zset", []string{"ZRANGESTORE", "{dst}", "{src}", "0", "-1"}, ":2\r\n"},
		{"SORT", "list", []string{"SORT", "{src}", "STORE", "{dst}"}, ":3\r\n"},
		{"SORT", "list", []string{"sort", "{src}", "limit", "0", "2", "store", "{dst}"}, ":2\r\n"},
		{"GEOSEARCHSTORE", "geo", []string{"GEOSEARCHSTORE", "{dst}", "{src}", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km"}, ":2\r\n"},
		{"GEORADIUS", "geo", []string{"GEORADIUS", "{src}", "15", "37", "200", "km", "STORE", "{dst}"}, ":2\r\n"},
		{"GEORADIUS", "geo", []string{"GEORADIUS", "{src}", "15", "37", "200", "km", "COUNT", "1", "STOREDIST", "{dst}"}, ":1\r\n"},
		{"GEORADIUSBYMEMBER", "geo", []string{"GEORADIUSBYMEMBER", "{src}", "Palermo", "200", "km", "STORE", "{dst}"}, ":2\r\n"},
	}
	for i, c := range cases {
		fill := func(src, dst string) []string {
			out := make([]string, len(c.args))
			for j, a := range c.args {
				out[j] = strings.NewReplacer("{src}", src, "{dst}", dst).Replace(a)
			}
			return out
		}
		do := func(args ...string) string {
			t.Helper()
			return rc.Do(args...)
		}
		create := func(key string) {
			t.Helper()
			args := append([]string(nil), setup[c.source]...)
			args[1] = key
			if got := do(args...); strings.HasPrefix(got, "-") {
				t.Fatalf("%q: %q", args, got)
			}
		}

		// Source and destination on different servers: refused, nothing written.
		src := fmt.Sprintf("src%d", i)
		create(src)
		dst := keyOnOtherBackend(t, f, rc, src, fmt.Sprintf("dst%d_", i))
		want := fmt.Sprintf("-ERR the keys of '%s' live on different servers: the proxy cannot serve it (put the keys under one hash tag)\r\n", strings.ToLower(c.name))
		if got := do(fill(src, dst)...); got != want {
			t.Errorf("%q across servers: %q, want %q", fill(src, dst), got, want)
		}
		if got := do("EXISTS", dst); got != ":0\r\n" {
			t.Errorf("%q across servers: EXISTS %s = %q", fill(src, dst), dst, got)
		}
		if s, _ := testservers.Do(f.Backends[backendOf(t, f, src)].Addr, "EXISTS", dst); s != ":0" {
			t.Errorf("%q across servers wrote %s on the source's server", fill(src, dst), dst)
		}

		// Under one hash tag: served, and the destination is where the proxy looks.
		tag := fmt.Sprintf("{t%d}", i)
		create(tag + "src")
		args := fill(tag+"src", tag+"dst")
		if got := do(args...); got != c.want {
			t.Errorf("%q: %q, want %q", args, got, c.want)
		}
		if got := do("EXISTS", tag+"dst"); got != ":1\r\n" {
			t.Errorf("%q: EXISTS %sdst through the proxy = %q, want :1", args, tag, got)
		}
	}
	// SORT without STORE has one key, wherever it lives (src4 is case 4's list).
	if got := rc.Do("SORT", "src4"); got != proxytest.Array(proxytest.Bulk("1"), proxytest.Bulk("2"), proxytest.Bulk("3")) {
		t.Errorf("SORT src4: %q", got)
	}
}
