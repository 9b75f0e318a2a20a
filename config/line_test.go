package config

import "testing"

// TestPoolLine checks that a parsed pool names the line of each key it was
// given, and the line of its name for a key left out.
func TestPoolLine(t *testing.T) {
	data := "alpha:\n  listen: 127.0.0.1:22121\n  servers:\n    - 127.0.0.1:7001:1\n" +
		"beta:\n  redis: true\n  listen: /tmp/beta.sock\n  servers:\n    - 127.0.0.1:7002:1\n"
	cfg, err := Parse([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		pool int
		key  string
		want int
	}{
		{0, "listen", 2},
		{0, "servers", 3},
		{0, "tls_cert_file", 1},
		{1, "redis", 6},
		{1, "listen", 7},
		{1, "hash", 5},
	}
	for _, tc := range tests {
		p := cfg.Pools[tc.pool]
		if got := p.Line(tc.key); got != tc.want {
			t.Errorf("pool %q: Line(%q) = %d, want %d", p.Name, tc.key, got, tc.want)
		}
	}
	if got := (&Pool{Name: "built"}).Line("listen"); got != 0 {
		t.Errorf("a Pool not read from a file: Line = %d, want 0", got)
	}
}
