package hashring_test

import (
	"testing"

	"github.com/shardproxy/shardproxy/hashring"
)

func TestHashKey(t *testing.T) {
	cases := []struct {
		name, key, tag, want string
	}{
		{"no tag", "user{42}:name", "", "user{42}:name"},
		{"empty key", "", "{}", ""},
		{"tagged", "user{42}:name", "{}", "42"},
		{"whole key is tag", "{x}", "{}", "x"},
		{"empty tag part", "x{}y", "{}", "x{}y"},
		{"only opening", "a{bc", "{}", "a{bc"},
		{"only closing", "ab}c", "{}", "ab}c"},
		{"closing before opening", "}a{b}", "{}", "b"},
		{"first tag wins", "{a}{b}", "{}", "a"},
		{"nested", "{a{b}c}", "{}", "a{b"},
		{"dollars", "a$b$c", "$$", "b"},
		{"dollars adjacent", "a$$b$c", "$$", "a$$b$c"},
		{"dollars only one", "ab$c", "$$", "ab$c"},
		{"high bytes", "k{\xff\x80}z", "{}", "\xff\x80"},
		{"one-byte tag ignored", "a{b}c", "{", "a{b}c"},
		{"three-byte tag ignored", "a{b}c", "{}x", "a{b}c"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := string(hashring.HashKey([]byte(c.key), c.tag)); got != c.want {
				t.Errorf("HashKey(%q, %q) = %q, want %q", c.key, c.tag, got, c.want)
			}
		})
	}
}

func TestHashKeyDoesNotAllocate(t *testing.T) {
	key := []byte("user{42}:name")
	var got []byte
	allocs := testing.AllocsPerRun(100, func() { got = hashring.HashKey(key, "{}") })
	if allocs != 0 || string(got) != "42" {
		t.Errorf("HashKey: %v allocations, result %q", allocs, got)
	}
}

func TestServerName(t *testing.T) {
	cases := []struct {
		name       string
		host       string
		port       int
		serverName string
		want       string
	}{
		{"host and port", "127.0.0.1", 6379, "", "127.0.0.1:6379"},
		{"port 11211 drops port", "127.0.0.2", 11211, "", "127.0.0.2"},
		{"hostname", "cache-1.local", 11212, "", "cache-1.local:11212"},
		{"explicit name", "127.0.0.1", 6379, "shard-a", "shard-a"},
		{"explicit name with 11211", "127.0.0.1", 11211, "mc1", "mc1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := hashring.ServerName(c.host, c.port, c.serverName); got != c.want {
				t.Errorf("ServerName(%q, %d, %q) = %q, want %q", c.host, c.port, c.serverName, got, c.want)
			}
		})
	}
}
