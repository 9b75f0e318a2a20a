package config

import (
	"strings"
	"testing"
)

func TestListen(t *testing.T) {
	tests := []struct {
		name, value string
		want        Listen
	}{
		{"ipv4", "127.0.0.1:22121", Listen{Network: "tcp", Addr: "127.0.0.1:22121"}},
		{"any address", "0.0.0.0:22121", Listen{Network: "tcp", Addr: "0.0.0.0:22121"}},
		{"hostname", "localhost:22121", Listen{Network: "tcp", Addr: "localhost:22121"}},
		{"ipv6 in brackets", "\"[::1]:22121\"", Listen{Network: "tcp", Addr: "[::1]:22121"}},
		{"ipv6 nutcracker style", "\"::1:22121\"", Listen{Network: "tcp", Addr: "[::1]:22121"}},
		{"highest port", "127.0.0.1:65535", Listen{Network: "tcp", Addr: "127.0.0.1:65535"}},
		{"unix socket", "/tmp/shardproxy.sock", Listen{Network: "unix", Addr: "/tmp/shardproxy.sock"}},
		{"unix socket with perms", "\"/tmp/x.sock 0666\"", Listen{Network: "unix", Addr: "/tmp/x.sock", Perm: 0o666}},
		{"perms without leading zero", "\"/tmp/x.sock 755\"", Listen{Network: "unix", Addr: "/tmp/x.sock", Perm: 0o755}},
		{"perms zero keep the default", "\"/tmp/x.sock 0\"", Listen{Network: "unix", Addr: "/tmp/x.sock"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := parsePool1(t, "alpha:\n  listen: "+tc.value+"\n  servers:\n    - 127.0.0.1:7001:1\n")
			if p.Listen != tc.want {
				t.Errorf("got %+v, want %+v", p.Listen, tc.want)
			}
		})
	}
}

func TestBadListen(t *testing.T) {
	tests := []struct{ name, value, want string }{
		{"no port", "127.0.0.1", `"127.0.0.1"`},
		{"empty port", "\"127.0.0.1:\"", `bad port ""`},
		{"port zero", "127.0.0.1:0", `bad port "0"`},
		{"port too high", "127.0.0.1:65536", `bad port "65536"`},
		{"port word", "127.0.0.1:http", `bad port "http"`},
		{"empty host", "\":22121\"", "empty host"},
		{"bad ipv6 in brackets", "\"[1.2.3.4]:22121\"", `bad IPv6 address "[1.2.3.4]"`},
		{"colon in a host name", "\"a:b:22121\"", `bad host "a:b"`},
		{"space in host", "\"local host:22121\"", `bad host "local host"`},
		{"relative socket path", "x.sock", `"x.sock"`},
		{"perms not octal", "\"/tmp/x.sock 0999\"", `bad socket permissions "0999"`},
		{"perms too wide", "\"/tmp/x.sock 01777\"", `bad socket permissions "01777"`},
		{"perms word", "\"/tmp/x.sock rw\"", `bad socket permissions "rw"`},
		{"perms empty", "\"/tmp/x.sock \"", `bad socket permissions ""`},
		{"trailing newline", "|\n    127.0.0.1:22121", `bad port "22121\n"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte("alpha:\n  listen: " + tc.value + "\n  servers:\n    - 127.0.0.1:7001:1\n"))
			if err == nil {
				t.Fatal("no error")
			}
			wantError(t, err, "alpha", "listen", 2, tc.want, "(line 2)")
		})
	}
}

func TestServerLine(t *testing.T) {
	tests := []struct {
		name, line string
		want       Server
	}{
		{"host port weight", "127.0.0.1:7001:1",
			Server{Network: "tcp", Addr: "127.0.0.1:7001", Host: "127.0.0.1", Port: 7001, Weight: 1, Ident: "127.0.0.1:7001"}},
		{"named", "127.0.0.1:7001:3 shard-a",
			Server{Network: "tcp", Addr: "127.0.0.1:7001", Host: "127.0.0.1", Port: 7001, Weight: 3, Name: "shard-a", Ident: "shard-a"}},
		{"port 11211 identity is the host", "127.0.0.1:11211:1",
			Server{Network: "tcp", Addr: "127.0.0.1:11211", Host: "127.0.0.1", Port: 11211, Weight: 1, Ident: "127.0.0.1"}},
		{"hostname", "localhost:6379:2",
			Server{Network: "tcp", Addr: "localhost:6379", Host: "localhost", Port: 6379, Weight: 2, Ident: "localhost:6379"}},
		{"ipv6 nutcracker style", "::1:7001:1",
			Server{Network: "tcp", Addr: "[::1]:7001", Host: "::1", Port: 7001, Weight: 1, Ident: "::1:7001"}},
		{"ipv6 in brackets", "[::1]:7001:1",
			Server{Network: "tcp", Addr: "[::1]:7001", Host: "::1", Port: 7001, Weight: 1, Ident: "[::1]:7001"}},
		{"leading zero port", "127.0.0.1:07001:1",
			Server{Network: "tcp", Addr: "127.0.0.1:7001", Host: "127.0.0.1", Port: 7001, Weight: 1, Ident: "127.0.0.1:07001"}},
		{"unix socket keeps the colon in its identity", "/tmp/redis.sock:1",
			Server{Network: "unix", Addr: "/tmp/redis.sock", Weight: 1, Ident: "/tmp/redis.sock:"}},
		{"named unix socket", "/tmp/redis.sock:2 local",
			Server{Network: "unix", Addr: "/tmp/redis.sock", Weight: 2, Name: "local", Ident: "local"}},
		{"large weight", "127.0.0.1:7001:99999",
			Server{Network: "tcp", Addr: "127.0.0.1:7001", Host: "127.0.0.1", Port: 7001, Weight: 99999, Ident: "127.0.0.1:7001"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseServer(tc.line)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestBadServers(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		line  int // line of the offending server
		want  string
	}{
		{"missing weight", []string{"127.0.0.1:7001"}, 4, `bad server "127.0.0.1:7001"`},
		{"weight zero", []string{"127.0.0.1:7001:0"}, 4, `bad weight "0"`},
		{"weight negative", []string{"127.0.0.1:7001:-1"}, 4, `bad weight "-1"`},
		{"weight word", []string{"127.0.0.1:7001:heavy"}, 4, `bad weight "heavy"`},
		{"bad port", []string{"127.0.0.1:abc:1"}, 4, `bad port "abc"`},
		{"port zero", []string{"127.0.0.1:0:1"}, 4, `bad port "0"`},
		{"port too high", []string{"127.0.0.1:65536:1"}, 4, `bad port "65536"`},
		{"unix without weight", []string{"/tmp/r.sock"}, 4, `bad server "/tmp/r.sock"`},
		{"space in name", []string{"127.0.0.1:7001:1 my shard"}, 4, `bad weight "1 my"`},
		{"empty name", []string{"\"127.0.0.1:7001:1 \""}, 4, "empty name"},
		{"empty host", []string{"\":7001:1\""}, 4, "empty host"},
		{"extra colon", []string{"127.0.0.1:7001:1:2"}, 4, `bad host "127.0.0.1:7001"`},
		{"null", []string{"~"}, 4, "missing value"},
		{"duplicate host port", []string{"127.0.0.1:7001:1", "127.0.0.1:7001:2"}, 5, `same identity "127.0.0.1:7001"`},
		{"duplicate name", []string{"127.0.0.1:7001:1 a", "127.0.0.1:7002:1 a"}, 5, `same identity "a"`},
		{"name equals another's address", []string{"127.0.0.1:7001:1 127.0.0.1:7002", "127.0.0.1:7002:1"}, 5,
			`same identity "127.0.0.1:7002"`},
		{"11211 host equals a name", []string{"127.0.0.1:11211:1", "127.0.0.1:11212:1 127.0.0.1"}, 5,
			`same identity "127.0.0.1"`},
		{"mapping item", []string{"{host: 127.0.0.1}"}, 4, "a server must be a single value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := "alpha:\n  listen: 127.0.0.1:22121\n  servers:\n    - " + strings.Join(tc.lines, "\n    - ") + "\n"
			_, err := Parse([]byte(data))
			if err == nil {
				t.Fatalf("no error for\n%s", data)
			}
			wantError(t, err, "alpha", "servers", tc.line, tc.want)
		})
	}
}
