package config

import "testing"

func TestPoolComparisons(t *testing.T) {
	base := `alpha:
  listen: 127.0.0.1:22121
  redis: true
  servers:
    - 127.0.0.1:7001:1 a
    - 127.0.0.1:7002:1 b
`
	parse := func(t *testing.T, y string) *Pool {
		t.Helper()
		cfg, err := Parse([]byte(y))
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Pools[0]
	}
	a := parse(t, base)
	for _, tc := range []struct {
		name                          string
		yaml                          string
		same, sameListener, sameConns bool
	}{
		{"identical", base, true, true, true},
		{"moved lines and a comment", "# a comment\n\n" + base, true, true, true},
		{"a server added", base + "    - 127.0.0.1:7003:1 c\n", false, true, true},
		{"another hash", base + "  hash: murmur\n", false, true, true},
		{"another port", "alpha:\n  listen: 127.0.0.1:22122\n  redis: true\n  servers:\n    - 127.0.0.1:7001:1 a\n    - 127.0.0.1:7002:1 b\n", false, false, true},
		{"a timeout", base + "  timeout: 400\n", false, true, false},
		{"redis_auth", base + "  redis_auth: secret\n", false, true, false},
		{"eject_mode", base + "  auto_eject_hosts: true\n  eject_mode: fail_fast\n", false, true, false},
		{"a client limit", base + "  client_connections: 10\n", false, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := parse(t, tc.yaml)
			if got := a.Same(b); got != tc.same {
				t.Errorf("Same = %v, want %v", got, tc.same)
			}
			if got := a.SameListener(b); got != tc.sameListener {
				t.Errorf("SameListener = %v, want %v", got, tc.sameListener)
			}
			if got := a.SameServerSettings(b); got != tc.sameConns {
				t.Errorf("SameServerSettings = %v, want %v", got, tc.sameConns)
			}
		})
	}
	c1, _ := Parse([]byte(base))
	c2, _ := Parse([]byte(base + "\n"))
	if c1.Digest == "" || c1.Digest == c2.Digest {
		t.Errorf("digests %q and %q: want different, non-empty", c1.Digest, c2.Digest)
	}
}
