package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSeveralPoolsKeepOrder(t *testing.T) {
	data := `zeta:
  listen: 127.0.0.1:22121
  redis: true
  servers:
    - 127.0.0.1:7001:1
alpha:
  listen: /tmp/alpha.sock
  servers:
    - 127.0.0.1:11211:1
mid:
  listen: "[::1]:22123"
  distribution: modula
  servers:
    - 127.0.0.1:7003:1
`
	cfg, err := Parse([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range cfg.Pools {
		names = append(names, p.Name)
	}
	if got := strings.Join(names, ","); got != "zeta,alpha,mid" {
		t.Fatalf("pool order %s, want zeta,alpha,mid", got)
	}
	if !cfg.Pools[0].Redis || cfg.Pools[1].Redis || cfg.Pools[2].Distribution != "modula" {
		t.Errorf("keys landed in the wrong pool: %+v %+v %+v", cfg.Pools[0], cfg.Pools[1], cfg.Pools[2])
	}
}

func TestFileErrors(t *testing.T) {
	second := "beta:\n  listen: 127.0.0.1:22122\n  servers:\n    - 127.0.0.1:7002:1\n"
	tests := []struct {
		name, data, pool, key string
		line                  int
		want                  string
	}{
		{"empty file", "", "", "", 0, "no pools"},
		{"only a comment", "# nothing\n", "", "", 0, "no pools"},
		{"not a mapping", "- alpha\n", "", "", 1, "mapping of pool name to pool"},
		{"bad yaml", "alpha:\n  listen: [\n", "", "", 0, "bad YAML"},
		{"two documents", onePool("") + "---\n" + second, "", "", 5, "more than one YAML document"},
		{"pool not a mapping", "alpha: 1\n", "alpha", "", 1, "a pool must be a mapping"},
		{"empty pool name", "\"\":\n  listen: 127.0.0.1:22121\n", "", "", 1, "empty pool name"},
		{"same pool twice", onePool("") + onePool(""), "alpha", "", 5, "duplicate pool name (first at line 1)"},
		{"missing listen", "alpha:\n  servers:\n    - 127.0.0.1:7001:1\n", "alpha", "listen", 1, "required key is missing"},
		{"missing servers", "alpha:\n  listen: 127.0.0.1:22121\n", "alpha", "servers", 1, "required key is missing"},
		{"servers not a list", "alpha:\n  listen: 127.0.0.1:22121\n  servers: 127.0.0.1:7001:1\n", "alpha", "servers", 3,
			"want a list"},
		{"empty servers", "alpha:\n  listen: 127.0.0.1:22121\n  servers: []\n", "alpha", "servers", 3, "empty servers list"},
		{"servers null", "alpha:\n  listen: 127.0.0.1:22121\n  servers:\n", "alpha", "servers", 3, "want a list"},
		{"same listen address", onePool("") + strings.Replace(second, "22122", "22121", 1), "beta", "listen", 6,
			`listen address "127.0.0.1:22121" is also used by pool "alpha"`},
		{"same ipv6 listen written two ways", strings.Replace(onePool(""), "127.0.0.1:22121", `"::1:22121"`, 1) +
			strings.Replace(second, "127.0.0.1:22122", `"[::1]:22121"`, 1), "beta", "listen", 6, "also used"},
		{"alias", "alpha: &a\n  listen: 127.0.0.1:22121\nbeta: *a\n", "alpha", "", 1, "anchors are not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.data))
			if err == nil {
				t.Fatalf("no error for\n%s", tc.data)
			}
			wantError(t, err, tc.pool, tc.key, tc.line, tc.want)
		})
	}
}

// TestAccepted covers YAML forms that must parse.
func TestAccepted(t *testing.T) {
	tests := []struct{ name, data string }{
		{"numeric pool name", "123:\n  listen: 127.0.0.1:22121\n  servers:\n    - 127.0.0.1:7001:1\n"},
		{"keys in any order", "alpha:\n  servers:\n    - 127.0.0.1:7001:1\n  listen: 127.0.0.1:22121\n  hash: md5\n"},
		{"CRLF line ends", "alpha:\r\n  listen: 127.0.0.1:22121\r\n  servers:\r\n    - 127.0.0.1:7001:1\r\n"},
		{"document start", "---\n" + onePool("")},
		{"flow style", "alpha: {listen: 127.0.0.1:22121, servers: [127.0.0.1:7001:1]}\n"},
		{"same server in two pools", onePool("") + strings.Replace(onePool(""), "alpha:\n  listen: 127.0.0.1:22121",
			"beta:\n  listen: 127.0.0.1:22122", 1)},
		{"same address under two names", "alpha:\n  listen: 127.0.0.1:22121\n  servers:\n" +
			"    - 127.0.0.1:7001:1 a\n    - 127.0.0.1:7001:1 b\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse([]byte(tc.data)); err != nil {
				t.Fatalf("%v\n%s", err, tc.data)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yml")
	bad := filepath.Join(dir, "bad.yml")
	if err := os.WriteFile(good, []byte(onePool("")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(onePool("  hash: fnv\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, want string
	}{
		{"good file", good, ""},
		{"bad file names the path", bad, bad + `: pool "alpha": key "hash": unknown hash "fnv"`},
		{"missing file", filepath.Join(dir, "none.yml"), "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Load(tc.path)
			if tc.want == "" {
				if err != nil || len(cfg.Pools) != 1 {
					t.Fatalf("got %v, %v", cfg, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// FuzzParse checks that Parse never panics and that whatever it accepts
// keeps the package's promises.
func FuzzParse(f *testing.F) {
	f.Add([]byte(onePool("  hash: md5\n  timeout: 5\n")))
	f.Add([]byte(jumpPool("  slots:\n    shard-a: \"0-127\"\n    127.0.0.1:7002: \"128-200\"\n    127.0.0.1: \"201-255\"\n")))
	f.Add([]byte(listenIs("\"/tmp/x.sock 0666\"")))
	f.Add([]byte(serversAre("::1:7001:1", "/tmp/r.sock:2 r")))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		if len(cfg.Pools) == 0 {
			t.Fatal("accepted a file with no pools")
		}
		for _, p := range cfg.Pools {
			if p.Name == "" || p.Listen.Addr == "" || len(p.Servers) == 0 || p.ServerConnections < 1 {
				t.Fatalf("accepted an incomplete pool %+v", p)
			}
			for _, s := range p.Servers {
				if s.Weight < 1 || s.Ident == "" || s.Addr == "" {
					t.Fatalf("accepted a bad server %+v", s)
				}
			}
			if p.Slots != nil && len(p.Slots) != SlotCount {
				t.Fatalf("slot table of %d slots", len(p.Slots))
			}
			for _, si := range p.Slots {
				if si < 0 || si >= len(p.Servers) {
					t.Fatalf("slot points at server %d of %d", si, len(p.Servers))
				}
			}
		}
	})
}
