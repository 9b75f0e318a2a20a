package config

import (
	"strings"
	"testing"
	"time"
)

// ejecting is the keys an eject_mode needs.
const ejecting = "  auto_eject_hosts: true\n"

func TestExtensionGoodValues(t *testing.T) {
	tests := []goodCase{
		{"eject_mode default", "", func(p *Pool) bool { return p.EjectMode == EjectRehash }},
		{"eject_mode rehash", ejecting + "  eject_mode: rehash\n", func(p *Pool) bool { return p.EjectMode == EjectRehash }},
		{"eject_mode fail_fast", ejecting + "  eject_mode: fail_fast\n", func(p *Pool) bool { return p.EjectMode == EjectFailFast }},
		{"jump is fail_fast", "  distribution: jump\n", func(p *Pool) bool { return p.EjectMode == EjectFailFast }},
		{"jump with fail_fast", "  distribution: jump\n" + ejecting + "  eject_mode: fail_fast\n",
			func(p *Pool) bool { return p.EjectMode == EjectFailFast }},
		{"client_idle_timeout", "  client_idle_timeout: 200\n", func(p *Pool) bool { return p.ClientIdleTimeout == 200*time.Millisecond }},
		{"client_idle_timeout default", "", func(p *Pool) bool { return p.ClientIdleTimeout == 0 }},
		{"client_park_after", "  client_park_after: 50\n", func(p *Pool) bool { return p.ClientParkAfter == 50*time.Millisecond }},
		{"client_park_after zero", "  client_park_after: 0\n", func(p *Pool) bool { return p.ClientParkAfter == 0 }},
		{"client_park_after default", "", func(p *Pool) bool { return p.ClientParkAfter == time.Second }},
		{"client_write_timeout", "  client_write_timeout: 500\n", func(p *Pool) bool { return p.ClientWriteTimeout == 500*time.Millisecond }},
		{"client_write_timeout zero", "  client_write_timeout: 0\n", func(p *Pool) bool { return p.ClientWriteTimeout == 0 }},
		{"client_write_timeout default", "", func(p *Pool) bool { return p.ClientWriteTimeout == 30*time.Second }},
		{"max_request_size", "  max_request_size: 1048576\n", func(p *Pool) bool { return p.MaxRequestSize == 1<<20 }},
		{"max_request_size default", "", func(p *Pool) bool { return p.MaxRequestSize == 512<<20 }},
		{"max_args", "  max_args: 10\n", func(p *Pool) bool { return p.MaxArgs == 10 }},
		{"max_args default", "", func(p *Pool) bool { return p.MaxArgs == 1<<20 }},
		{"redis_username", "  redis: true\n  redis_auth: pw\n  redis_username: app\n",
			func(p *Pool) bool { return p.RedisUsername == "app" && p.RedisAuth == "pw" }},
		{"client tls", "  tls_cert_file: /c.pem\n  tls_key_file: /k.pem\n",
			func(p *Pool) bool {
				return p.TLS == ClientTLS{CertFile: "/c.pem", KeyFile: "/k.pem"} && p.TLS.Enabled()
			}},
		{"client tls with client ca", "  tls_cert_file: /c.pem\n  tls_key_file: /k.pem\n  tls_client_ca_file: /ca.pem\n",
			func(p *Pool) bool { return p.TLS.ClientCAFile == "/ca.pem" }},
		{"no client tls", "", func(p *Pool) bool { return !p.TLS.Enabled() }},
		{"server_tls", "  server_tls: true\n", func(p *Pool) bool { return p.ServerTLS == ServerTLS{Enabled: true} }},
		{"server_tls all", "  server_tls: true\n  server_tls_ca_file: /ca.pem\n  server_tls_server_name: redis.local\n",
			func(p *Pool) bool {
				return p.ServerTLS == ServerTLS{Enabled: true, CAFile: "/ca.pem", ServerName: "redis.local"}
			}},
		{"server_tls insecure", "  server_tls: true\n  server_tls_insecure: true\n",
			func(p *Pool) bool { return p.ServerTLS == ServerTLS{Enabled: true, Insecure: true} }},
		{"server_tls false", "  server_tls: false\n", func(p *Pool) bool { return !p.ServerTLS.Enabled }},
		{"allow_flush", "  redis: true\n  allow_flush: true\n", func(p *Pool) bool { return p.AllowFlush }},
		{"allow_flush default", "  redis: true\n", func(p *Pool) bool { return !p.AllowFlush }},
	}
	runGood(t, tests)
}

func TestExtensionBadValues(t *testing.T) {
	tests := []badCase{
		{"allow_flush on memcache", "  allow_flush: true\n", "allow_flush", "needs redis: true", 3},
		{"allow_flush yes", "  redis: true\n  allow_flush: yes\n", "allow_flush", `"yes"`, 4},
		{"eject_mode unknown", ejecting + "  eject_mode: drop\n", "eject_mode", `unknown eject_mode "drop"`, 4},
		{"eject_mode case", ejecting + "  eject_mode: FAIL_FAST\n", "eject_mode", `"FAIL_FAST"`, 4},
		{"eject_mode without auto_eject_hosts", "  eject_mode: fail_fast\n", "eject_mode", "auto_eject_hosts: true", 3},
		{"eject_mode rehash with jump", "  distribution: jump\n" + ejecting + "  eject_mode: rehash\n", "eject_mode",
			"must be fail_fast", 5},
		{"client_idle_timeout negative", "  client_idle_timeout: -1\n", "client_idle_timeout", `"-1"`, 3},
		{"client_park_after negative", "  client_park_after: -5\n", "client_park_after", `"-5"`, 3},
		{"client_write_timeout unit", "  client_write_timeout: 5s\n", "client_write_timeout", `"5s"`, 3},
		{"max_request_size zero", "  max_request_size: 0\n", "max_request_size", `"0"`, 3},
		{"max_request_size too large", "  max_request_size: 4294967296\n", "max_request_size", `"4294967296"`, 3},
		{"max_args zero", "  max_args: 0\n", "max_args", `"0"`, 3},
		{"max_args word", "  max_args: many\n", "max_args", `"many"`, 3},
		{"redis_username without redis", "  redis_auth: pw\n  redis_username: app\n", "redis_auth", "redis: true", 3},
		{"redis_username memcache", "  redis_username: app\n", "redis_username", "redis: true", 3},
		{"redis_username without auth", "  redis: true\n  redis_username: app\n", "redis_username", "needs redis_auth", 4},
		{"redis_username empty", "  redis: true\n  redis_username: \"\"\n", "redis_username", "empty value", 4},
		{"tls cert without key", "  tls_cert_file: /c.pem\n", "tls_cert_file", "needs tls_key_file", 3},
		{"tls key without cert", "  tls_key_file: /k.pem\n", "tls_key_file", "needs tls_cert_file", 3},
		{"tls client ca alone", "  tls_client_ca_file: /ca.pem\n", "tls_client_ca_file", "needs tls_cert_file", 3},
		{"tls cert null", "  tls_cert_file: ~\n", "tls_cert_file", "missing value", 3},
		{"server_tls yes", "  server_tls: yes\n", "server_tls", `"yes"`, 3},
		{"server_tls_ca_file alone", "  server_tls_ca_file: /ca.pem\n", "server_tls_ca_file", "server_tls: true", 3},
		{"server_tls_server_name alone", "  server_tls_server_name: r\n", "server_tls_server_name", "server_tls: true", 3},
		{"server_tls_insecure alone", "  server_tls_insecure: true\n", "server_tls_insecure", "server_tls: true", 3},
		{"server_tls_insecure with ca", "  server_tls: true\n  server_tls_ca_file: /ca.pem\n  server_tls_insecure: true\n",
			"server_tls_insecure", "give one of them", 5},
		{"extension key twice", "  max_args: 1\n  max_args: 2\n", "max_args", "given twice", 4},
	}
	runBad(t, tests)
}

// TestServerTLSUnixServer checks that a unix socket server over TLS needs a
// name to verify, unless verification is off.
func TestServerTLSUnixServer(t *testing.T) {
	pool := func(extra string) string {
		return "alpha:\n  listen: 127.0.0.1:22121\n  server_tls: true\n" + extra + "  servers:\n    - /tmp/r.sock:1\n"
	}
	tests := []struct {
		name, extra string
		ok          bool
	}{
		{"no name", "", false},
		{"server name", "  server_tls_server_name: redis.local\n", true},
		{"insecure", "  server_tls_insecure: true\n", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(pool(tc.extra)))
			if tc.ok && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !tc.ok {
				wantError(t, err, "alpha", "server_tls", 3, "set server_tls_server_name")
			}
		})
	}
}

// TestExtensionSecretNotInError checks that redis_auth never appears in an
// error about the keys that go with it.
func TestExtensionSecretNotInError(t *testing.T) {
	_, err := Parse([]byte(onePool("  redis_auth: hunter2\n  redis_username: app\n")))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("got %v; want an error without the password", err)
	}
}
