package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// onePool returns a file with pool "alpha" listening on 127.0.0.1:22121 with
// one server, plus extra (indented key lines), which start on line 3.
func onePool(extra string) string {
	return "alpha:\n  listen: 127.0.0.1:22121\n" + extra + "  servers:\n    - 127.0.0.1:7001:1\n"
}

func parsePool1(t *testing.T, data string) *Pool {
	t.Helper()
	cfg, err := Parse([]byte(data))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, data)
	}
	if len(cfg.Pools) != 1 {
		t.Fatalf("got %d pools, want 1", len(cfg.Pools))
	}
	return cfg.Pools[0]
}

// wantError checks that err is an *Error naming pool, key and line, and
// that its text contains every string of contains.
func wantError(t *testing.T, err error, pool, key string, line int, contains ...string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if e.Pool != pool || e.Key != key || e.Line != line {
		t.Errorf("error names pool %q key %q line %d; want %q %q %d (%v)", e.Pool, e.Key, e.Line, pool, key, line, err)
	}
	text := err.Error()
	for _, c := range contains {
		if !strings.Contains(text, c) {
			t.Errorf("error %q does not contain %q", text, c)
		}
	}
}

func TestDefaults(t *testing.T) {
	got := parsePool1(t, onePool(""))
	want := &Pool{
		Name:                "alpha",
		Listen:              Listen{Network: "tcp", Addr: "127.0.0.1:22121"},
		Hash:                "fnv1a_64",
		Distribution:        "ketama",
		Backlog:             512,
		ServerConnections:   1,
		ServerSessions:      DefaultServerSessions,
		ServerRetryTimeout:  30 * time.Second,
		ServerFailureLimit:  2,
		EjectMode:           EjectRehash,
		ClientWriteTimeout:  30 * time.Second,
		ClientParkAfter:     time.Second,
		MaxRequestSize:      536870912,
		MaxArgs:             1048576,
		ClientOutputLimit:   256 << 20,
		ClusterRetryTimeout: DefaultClusterRetryTimeout,
		Servers: []Server{{Network: "tcp", Addr: "127.0.0.1:7001", Host: "127.0.0.1", Port: 7001,
			Weight: 1, Ident: "127.0.0.1:7001"}},
		line:  1,
		lines: map[string]int{"listen": 2, "servers": 3},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", got, want)
	}
}

func TestGoodValues(t *testing.T) {
	tests := []goodCase{
		{"hash md5", "  hash: md5\n", func(p *Pool) bool { return p.Hash == "md5" }},
		{"hash murmur", "  hash: murmur\n", func(p *Pool) bool { return p.Hash == "murmur" }},
		{"hash_tag braces", "  hash_tag: \"{}\"\n", func(p *Pool) bool { return p.HashTag == "{}" }},
		{"hash_tag letters", "  hash_tag: ab\n", func(p *Pool) bool { return p.HashTag == "ab" }},
		{"distribution modula", "  distribution: modula\n", func(p *Pool) bool { return p.Distribution == "modula" }},
		{"distribution random", "  distribution: random\n", func(p *Pool) bool { return p.Distribution == "random" }},
		{"distribution jump", "  distribution: jump\n", func(p *Pool) bool { return p.Distribution == "jump" && p.Slots == nil }},
		{"timeout", "  timeout: 400\n", func(p *Pool) bool { return p.Timeout == 400*time.Millisecond }},
		{"timeout zero waits forever", "  timeout: 0\n", func(p *Pool) bool { return p.Timeout == 0 }},
		{"timeout quoted", "  timeout: \"250\"\n", func(p *Pool) bool { return p.Timeout == 250*time.Millisecond }},
		{"timeout leading zero is decimal", "  timeout: 010\n", func(p *Pool) bool { return p.Timeout == 10*time.Millisecond }},
		{"backlog", "  backlog: 1024\n", func(p *Pool) bool { return p.Backlog == 1024 }},
		{"backlog zero", "  backlog: 0\n", func(p *Pool) bool { return p.Backlog == 0 }},
		{"preconnect", "  preconnect: true\n", func(p *Pool) bool { return p.Preconnect }},
		{"redis", "  redis: true\n", func(p *Pool) bool { return p.Redis }},
		{"redis false", "  redis: false\n", func(p *Pool) bool { return !p.Redis }},
		{"redis quoted", "  redis: \"true\"\n", func(p *Pool) bool { return p.Redis }},
		{"redis_auth", "  redis: true\n  redis_auth: s3cret\n", func(p *Pool) bool { return p.RedisAuth == "s3cret" }},
		{"redis_db", "  redis_db: 3\n", func(p *Pool) bool { return p.RedisDB == 3 }},
		{"server_connections", "  server_connections: 4\n", func(p *Pool) bool { return p.ServerConnections == 4 }},
		{"server_sessions", "  server_sessions: 8\n", func(p *Pool) bool { return p.ServerSessions == 8 }},
		{"auto_eject_hosts", "  auto_eject_hosts: true\n", func(p *Pool) bool { return p.AutoEjectHosts }},
		{"server_retry_timeout", "  server_retry_timeout: 2000\n", func(p *Pool) bool { return p.ServerRetryTimeout == 2*time.Second }},
		{"server_retry_timeout zero", "  server_retry_timeout: 0\n", func(p *Pool) bool { return p.ServerRetryTimeout == 0 }},
		{"server_failure_limit", "  server_failure_limit: 5\n", func(p *Pool) bool { return p.ServerFailureLimit == 5 }},
		{"server_failure_limit zero", "  server_failure_limit: 0\n", func(p *Pool) bool { return p.ServerFailureLimit == 0 }},
		{"tcpkeepalive", "  tcpkeepalive: true\n", func(p *Pool) bool { return p.TCPKeepalive }},
		{"client_connections", "  client_connections: 100\n", func(p *Pool) bool { return p.ClientConnections == 100 }},
		{"largest number", "  backlog: 2147483647\n", func(p *Pool) bool { return p.Backlog == 2147483647 }},
		{"comment after value", "  timeout: 5 # ms\n", func(p *Pool) bool { return p.Timeout == 5*time.Millisecond }},
	}
	runGood(t, tests)
}

func TestBadValues(t *testing.T) {
	tests := []badCase{
		{"unknown hash", "  hash: fnv\n", "hash", `unknown hash "fnv"`, 3},
		{"hash is case-sensitive", "  hash: MD5\n", "hash", `"MD5"`, 3},
		{"hash_tag one char", "  hash_tag: \"{\"\n", "hash_tag", `"{"`, 3},
		{"hash_tag three chars", "  hash_tag: \"{}}\"\n", "hash_tag", `"{}}"`, 3},
		{"hash_tag empty", "  hash_tag: \"\"\n", "hash_tag", "empty value", 3},
		{"unknown distribution", "  distribution: vnode\n", "distribution", `unknown distribution "vnode"`, 3},
		{"timeout negative", "  timeout: -1\n", "timeout", `"-1"`, 3},
		{"timeout plus sign", "  timeout: +5\n", "timeout", `"+5"`, 3},
		{"timeout fraction", "  timeout: 1.5\n", "timeout", `"1.5"`, 3},
		{"timeout hex", "  timeout: 0x10\n", "timeout", `"0x10"`, 3},
		{"timeout with unit", "  timeout: 5s\n", "timeout", `"5s"`, 3},
		{"timeout too large", "  timeout: 2147483648\n", "timeout", `"2147483648"`, 3},
		{"timeout null", "  timeout: ~\n", "timeout", `"~"`, 3},
		{"timeout empty", "  timeout:\n", "timeout", "missing value", 3},
		{"backlog word", "  backlog: many\n", "backlog", `"many"`, 3},
		{"preconnect yes", "  preconnect: yes\n", "preconnect", `"yes"`, 3},
		{"redis True", "  redis: True\n", "redis", `"True"`, 3},
		{"redis one", "  redis: 1\n", "redis", `"1"`, 3},
		{"auto_eject_hosts on", "  auto_eject_hosts: on\n", "auto_eject_hosts", `"on"`, 3},
		{"tcpkeepalive TRUE", "  tcpkeepalive: TRUE\n", "tcpkeepalive", `"TRUE"`, 3},
		{"redis_auth without redis", "  redis_auth: pw\n", "redis_auth", "redis: true", 3},
		{"redis_auth empty", "  redis: true\n  redis_auth: \"\"\n", "redis_auth", "empty value", 4},
		{"redis_db negative", "  redis_db: -1\n", "redis_db", `"-1"`, 3},
		{"server_connections zero", "  server_connections: 0\n", "server_connections", `"0"`, 3},
		{"server_retry_timeout word", "  server_retry_timeout: never\n", "server_retry_timeout", `"never"`, 3},
		{"server_failure_limit negative", "  server_failure_limit: -2\n", "server_failure_limit", `"-2"`, 3},
		{"client_connections word", "  client_connections: all\n", "client_connections", `"all"`, 3},
		{"unknown key", "  hashing: md5\n", "hashing", `unknown key (value "md5")`, 3},
		{"key case matters", "  Timeout: 5\n", "Timeout", "unknown key", 3},
		{"unknown mapping key", "  extra:\n    a: b\n", "extra", "unknown key", 3},
		{"key given twice", "  timeout: 1\n  timeout: 2\n", "timeout", "given twice (first at line 3)", 4},
		{"list for a scalar key", "  hash:\n    - md5\n", "hash", "want a single value, got a list", 3},
		{"explicit tag", "  timeout: !!int 5\n", "timeout", "tags are not supported", 3},
		{"anchor", "  hash: &h md5\n", "hash", "anchors are not supported", 3},
		{"slots without jump", "  slots:\n    127.0.0.1:7001: \"0-255\"\n", "slots", "distribution: jump", 3},
	}
	runBad(t, tests)
}

// TestLineNumbers checks that an error points at the offending line.
func TestLineNumbers(t *testing.T) {
	tests := []struct {
		name, data, key string
		line            int
	}{
		{"second key given twice", onePool("  hash: md5\n  timeout: 5\n  hash: crc32\n"), "hash", 5},
		{"third server", "alpha:\n  listen: 127.0.0.1:22121\n  servers:\n    - 127.0.0.1:7001:1\n    - 127.0.0.1:7002:1\n" +
			"    - 127.0.0.1:7003:0\n", "servers", 6},
		{"second pool", onePool("") + "beta:\n  listen: 127.0.0.1:22122\n  hash: nope\n  servers:\n    - 127.0.0.1:7001:1\n",
			"hash", 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.data))
			var e *Error
			if !errors.As(err, &e) || e.Key != tc.key || e.Line != tc.line {
				t.Fatalf("got %v; want key %q at line %d", err, tc.key, tc.line)
			}
		})
	}
}

// TestSecretNotInError checks that a redis_auth password never appears in
// an error message.
func TestSecretNotInError(t *testing.T) {
	_, err := Parse([]byte(onePool("  redis_auth: hunter2\n")))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("got %v; want an error without the password", err)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"pool key line", &Error{Pool: "alpha", Key: "hash", Line: 3, Err: errors.New(`unknown hash "fnv"`)},
			`pool "alpha": key "hash": unknown hash "fnv" (line 3)`},
		{"pool only", &Error{Pool: "alpha", Line: 1, Err: errors.New("a pool must be a mapping of keys")},
			`pool "alpha": a pool must be a mapping of keys (line 1)`},
		{"file level without line", &Error{Err: errors.New("no pools")}, "no pools"},
		{"no cause", &Error{Pool: "alpha"}, `pool "alpha": invalid configuration`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// goodCase is one pool key with a good value, and a check of the result.
type goodCase struct {
	name  string
	extra string // lines added to a one-pool file
	check func(p *Pool) bool
}

func runGood(t *testing.T, tests []goodCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := parsePool1(t, onePool(tc.extra))
			if !tc.check(p) {
				t.Errorf("unexpected pool %+v", p)
			}
		})
	}
}

// badCase is one pool key with a bad value, and the error it must give.
type badCase struct {
	name, extra, key, value string
	line                    int
}

func runBad(t *testing.T, tests []badCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(onePool(tc.extra)))
			if err == nil {
				t.Fatalf("no error for\n%s", onePool(tc.extra))
			}
			wantError(t, err, "alpha", tc.key, tc.line, `pool "alpha"`, `key "`+tc.key+`"`, tc.value,
				fmt.Sprintf("(line %d)", tc.line))
		})
	}
}
