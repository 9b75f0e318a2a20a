package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

// Deliberate differences from nutcracker 0.5.0, each a case below with a
// non-empty differs:
//   - numbers above 2147483647: nutcracker wraps them silently; we refuse.
//   - unix socket permissions that are not octal ("0999", "rw", ""): nutcracker
//     reads them as 0; we refuse.
//   - a server line with an empty host (":7001:1"), an empty name (trailing
//     space) or a colon in a non-IPv6 host ("127.0.0.1:7001:1:2"): nutcracker
//     accepts them and fails later; we refuse.
//   - "~" or "null" as redis_auth: nutcracker takes the text as the password;
//     we refuse.
//   - YAML flow style, document markers (---), distribution jump and the
//     slots key: nutcracker refuses; we accept.
//   - "[ipv6]:port" as listen: nutcracker cannot resolve it; we accept.
//   - the extension keys (eject_mode, client_*_timeout, max_*, redis_username,
//     tls_*, server_tls*): nutcracker refuses unknown keys; we accept these.
//
// Not covered here: what needs a lookup or the file system (a listen host
// that does not resolve, a unix listen path in use). Parse does neither;
// shardproxy -t does, through proxy.Check, and TestTestConfLikeStart in
// cmd/shardproxy compares it with nutcracker -t.

// compatCase is one configuration given to both nutcracker and Parse.
type compatCase struct {
	name, data string
	differs    string // why we differ from nutcracker on purpose, or ""
}

func listenIs(v string) string {
	return "alpha:\n  listen: " + v + "\n  servers:\n    - 127.0.0.1:7001:1\n"
}

func serversAre(lines ...string) string {
	return "alpha:\n  listen: 127.0.0.1:22121\n  servers:\n    - " + strings.Join(lines, "\n    - ") + "\n"
}

func compatCases(t *testing.T) []compatCase {
	cases := []compatCase{
		{"minimal", onePool(""), ""},
		{"every key", onePool("  hash: murmur\n  hash_tag: \"{}\"\n  distribution: modula\n  timeout: 400\n" +
			"  backlog: 1024\n  preconnect: true\n  redis: true\n  redis_auth: pw\n  redis_db: 2\n" +
			"  server_connections: 2\n  auto_eject_hosts: true\n  server_retry_timeout: 0\n" +
			"  server_failure_limit: 0\n  tcpkeepalive: true\n  client_connections: 10\n"), ""},
		{"quoted values", onePool("  redis: \"true\"\n  timeout: \"400\"\n"), ""},
		{"two pools", onePool("") + strings.Replace(onePool(""), "alpha:\n  listen: 127.0.0.1:22121",
			"beta:\n  listen: 127.0.0.1:22122", 1), ""},
		{"unknown hash", onePool("  hash: fnv\n"), ""},
		{"hash upper case", onePool("  hash: MD5\n"), ""},
		{"unknown distribution", onePool("  distribution: vnode\n"), ""},
		{"jump", onePool("  distribution: jump\n"), "jump is our extension"},
		{"extension key", onePool("  max_args: 100\n"), "an extension key"},
		{"hash_tag one char", onePool("  hash_tag: \"{\"\n"), ""},
		{"hash_tag two bytes of utf-8", onePool("  hash_tag: \"é\"\n"), ""},
		{"bool yes", onePool("  redis: yes\n"), ""},
		{"bool True", onePool("  preconnect: True\n"), ""},
		{"bool 1", onePool("  tcpkeepalive: 1\n"), ""},
		{"negative number", onePool("  timeout: -1\n"), ""},
		{"plus sign", onePool("  backlog: +5\n"), ""},
		{"fraction", onePool("  timeout: 1.5\n"), ""},
		{"leading zero", onePool("  timeout: 010\n"), ""},
		{"largest number", onePool("  backlog: 2147483647\n"), ""},
		{"number that wraps", onePool("  timeout: 4294967296\n"), "nutcracker wraps; we refuse"},
		{"empty value", onePool("  timeout:\n"), ""},
		{"empty string", onePool("  redis_auth: \"\"\n"), ""},
		{"redis_auth without redis", onePool("  redis_auth: pw\n"), ""},
		{"redis_auth tilde", onePool("  redis: true\n  redis_auth: ~\n"), "a null is not a password"},
		{"server_connections 0", onePool("  server_connections: 0\n"), ""},
		{"unknown key", onePool("  foo: 1\n"), ""},
		{"key given twice", onePool("  hash: md5\n  hash: md5\n"), ""},
		{"nested mapping", onePool("  extra:\n    a: b\n"), ""},
		{"explicit tag", onePool("  timeout: !!int 5\n"), ""},
		{"anchor", onePool("  hash: &h md5\n"), ""},
		{"document start", "---\n" + onePool(""), "document markers are harmless"},
		{"flow style", "alpha: {listen: 127.0.0.1:22121, servers: [127.0.0.1:7001:1]}\n", "flow style is harmless"},
		{"empty file", "", ""},
		{"top-level list", "- alpha\n", ""},
		{"pool not a mapping", "alpha: 1\n", ""},
		{"empty pool name", "\"\":\n  listen: 127.0.0.1:22121\n  servers:\n    - 127.0.0.1:7001:1\n", ""},
		{"same pool twice", onePool("") + onePool(""), ""},
		{"same listen twice", onePool("") + strings.Replace(onePool(""), "alpha", "beta", 1), ""},
		{"missing listen", "alpha:\n  servers:\n    - 127.0.0.1:7001:1\n", ""},
		{"missing servers", "alpha:\n  listen: 127.0.0.1:22121\n", ""},
		{"empty servers", "alpha:\n  listen: 127.0.0.1:22121\n  servers:\n", ""},
		{"servers scalar", "alpha:\n  listen: 127.0.0.1:22121\n  servers: 127.0.0.1:7001:1\n", ""},
		{"listen hostname", listenIs("localhost:22121"), ""},
		{"listen any", listenIs("0.0.0.0:22121"), ""},
		{"listen ipv6", listenIs("\"::1:22121\""), ""},
		{"listen ipv6 brackets", listenIs("\"[::1]:22121\""), "brackets are the usual IPv6 form"},
		{"listen no port", listenIs("127.0.0.1"), ""},
		{"listen port 0", listenIs("127.0.0.1:0"), ""},
		{"listen port 65535", listenIs("127.0.0.1:65535"), ""},
		{"listen port 65536", listenIs("127.0.0.1:65536"), ""},
		{"listen unix", listenIs("/tmp/x.sock"), ""},
		{"listen unix perms", listenIs("\"/tmp/x.sock 0666\""), ""},
		{"listen unix perms 755", listenIs("\"/tmp/x.sock 755\""), ""},
		{"listen unix perms too wide", listenIs("\"/tmp/x.sock 01777\""), ""},
		{"listen unix perms not octal", listenIs("\"/tmp/x.sock 0999\""), "nutcracker reads 0; we refuse"},
		{"server named", serversAre("127.0.0.1:7001:1 a"), ""},
		{"server hostname", serversAre("localhost:7001:1"), ""},
		{"server ipv6", serversAre("::1:7001:1"), ""},
		{"server ipv6 brackets", serversAre("\"[::1]:7001:1\""), ""},
		{"server unix", serversAre("/tmp/r.sock:1", "/tmp/s.sock:1 s"), ""},
		{"server unix no weight", serversAre("/tmp/r.sock"), ""},
		{"server no weight", serversAre("127.0.0.1:7001"), ""},
		{"server weight 0", serversAre("127.0.0.1:7001:0"), ""},
		{"server weight -1", serversAre("127.0.0.1:7001:-1"), ""},
		{"server big weight", serversAre("127.0.0.1:7001:99999"), ""},
		{"server bad port", serversAre("127.0.0.1:abc:1"), ""},
		{"server port 0", serversAre("127.0.0.1:0:1"), ""},
		{"server port 65536", serversAre("127.0.0.1:65536:1"), ""},
		{"server space in name", serversAre("127.0.0.1:7001:1 a b"), ""},
		{"server empty name", serversAre("\"127.0.0.1:7001:1 \""), "an empty name is a typo"},
		{"server empty host", serversAre("\":7001:1\""), "an empty host is a typo"},
		{"server extra colon", serversAre("127.0.0.1:7001:1:2"), "no host name has a colon"},
		{"servers same host port", serversAre("127.0.0.1:7001:1", "127.0.0.1:7001:2"), ""},
		{"servers same name", serversAre("127.0.0.1:7001:1 a", "127.0.0.1:7002:1 a"), ""},
		{"servers same address two names", serversAre("127.0.0.1:7001:1 a", "127.0.0.1:7001:1 b"), ""},
		{"servers 11211 host clash", serversAre("127.0.0.1:11211:1", "127.0.0.1:11212:1 127.0.0.1"), ""},
	}
	for _, f := range []string{"demo.yml", "memcache.yml", "nutcracker.yml", "jump.yml", "secure.yml", "sentinel.yml", "cluster.yml"} {
		data, err := os.ReadFile(filepath.Join("..", "configs", f))
		if err != nil {
			t.Fatal(err)
		}
		c := compatCase{name: "configs/" + f, data: string(data)}
		switch f {
		case "jump.yml":
			c.differs = "slot mode is our extension"
		case "secure.yml":
			c.differs = "TLS, ACL, limit and eject_mode keys are our extensions"
		case "sentinel.yml":
			c.differs = "the sentinels keys are our extension"
		case "cluster.yml":
			c.differs = "the cluster keys are our extension"
		}
		cases = append(cases, c)
	}
	return cases
}

// TestNutcrackerAgrees runs the real nutcracker -t on each case: whatever it
// accepts we accept, whatever it refuses we refuse, except the deliberate
// differences listed above.
func TestNutcrackerAgrees(t *testing.T) {
	bin := testservers.Need(t, "nutcracker")
	dir := t.TempDir()
	for i, tc := range compatCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("case%02d.yml", i))
			if err := os.WriteFile(path, []byte(tc.data), 0o644); err != nil {
				t.Fatal(err)
			}
			theirs := testservers.NutcrackerAccepts(t, bin, path)
			_, err := Parse([]byte(tc.data))
			ours := err == nil
			switch {
			case tc.differs == "" && ours != theirs:
				t.Errorf("nutcracker accepts: %v; we accept: %v (%v)\n%s", theirs, ours, err, tc.data)
			case tc.differs != "" && ours == theirs:
				t.Errorf("listed as a difference (%s), but nutcracker and we agree (accept: %v)\n%s", tc.differs, ours, tc.data)
			}
		})
	}
}
