package proxy_test

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/proxy"
)

// TestCheckAgreesWithStart gives the same file to Check (what shardproxy -t
// runs) and to New and Start: Check must refuse what Start refuses, naming
// the same pool, key and line, and accept what Start accepts, leaving the
// directory of a unix listen path as it was. Host names are under .invalid,
// which never resolves, or localhost, which resolves without a network.
func TestCheckAgreesWithStart(t *testing.T) {
	backends := proxytest.StartRedisBackends(t, 1)
	pki := proxytest.NewPKI(t, "check")
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	proxytest.WriteFile(t, notPEM, "not a certificate")
	tcp := func(host string) func(*testing.T, string) string {
		return func(t *testing.T, _ string) string {
			return net.JoinHostPort(host, strconv.Itoa(testservers.FreePort(t, "127.0.0.1")))
		}
	}
	unix := func(prepare func(t *testing.T, path string)) func(*testing.T, string) string {
		return func(t *testing.T, dir string) string {
			path := filepath.Join(dir, "s.sock")
			if prepare != nil {
				prepare(t, path)
			}
			return path
		}
	}
	tests := []struct {
		name    string
		listen  func(t *testing.T, dir string) string
		extra   []string
		servers []string // server lines; nil for the backend
		want    string   // what both errors contain; "" when both accept
	}{
		{"loopback address", tcp("127.0.0.1"), nil, nil, ""},
		{"localhost", tcp("localhost"), nil, nil, ""},
		{"listen host does not resolve", tcp("nosuch.invalid"), nil, nil,
			`pool "alpha": key "listen": host "nosuch.invalid" of nosuch.invalid:`},
		{"listen address of another machine", tcp("192.0.2.1"), nil, nil, `pool "alpha": key "listen": `},
		{"server host does not resolve", tcp("127.0.0.1"), nil, []string{"nosuch.invalid:6379:1"}, ""},
		{"unix path free", unix(nil), nil, nil, ""},
		{"unix stale socket", unix(proxytest.StaleSocket), nil, nil, ""},
		{"unix path in use", unix(func(t *testing.T, path string) {
			testservers.Redis(t, "--unixsocket", path, "--unixsocketperm", "700")
		}), nil, nil, "another process is listening on it (line 2)"},
		{"unix path is a file", unix(func(t *testing.T, path string) { proxytest.WriteFile(t, path, "x") }), nil, nil,
			"is not a socket but a regular file: remove it or choose another path (line 2)"},
		{"unix directory missing", func(t *testing.T, dir string) string {
			return filepath.Join(dir, "missing", "s.sock")
		}, nil, nil, `pool "alpha": key "listen": `},
		{"unix path too long", func(t *testing.T, dir string) string {
			return filepath.Join(dir, strings.Repeat("d", 120)+".sock")
		}, nil, nil, `pool "alpha": key "listen": `},
		{"certificate", tcp("127.0.0.1"), []string{"tls_cert_file: " + pki.ServerCert, "tls_key_file: " + pki.ServerKey}, nil, ""},
		{"certificate file missing", tcp("127.0.0.1"),
			[]string{"tls_cert_file: /nonexistent/cert.pem", "tls_key_file: " + pki.ServerKey}, nil,
			`pool "alpha": key "tls_cert_file": open /nonexistent/cert.pem`},
		{"client CA not PEM", tcp("127.0.0.1"),
			[]string{"tls_cert_file: " + pki.ServerCert, "tls_key_file: " + pki.ServerKey, "tls_client_ca_file: " + notPEM},
			nil, `pool "alpha": key "tls_client_ca_file": ` + notPEM + `: no PEM certificate`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			listen := tc.listen(t, dir)
			yaml := proxytest.PoolYAML(listen, backends, tc.extra...)
			if tc.servers != nil {
				yaml = strings.Replace(yaml, backends[0].Addr+":1", tc.servers[0], 1)
			}
			cfg, err := config.Parse([]byte(yaml))
			if err != nil {
				t.Fatalf("config: %v\n%s", err, yaml)
			}
			before := dirEntries(t, dir)
			checkErr := proxy.Check(cfg)
			if after := dirEntries(t, dir); !slices.Equal(before, after) {
				t.Errorf("Check changed %s: %v, then %v", dir, before, after)
			}
			startErr := proxytest.StartErr(t, yaml)
			if tc.want == "" {
				if checkErr != nil || startErr != nil {
					t.Fatalf("Check: %v; Start: %v; want both to accept", checkErr, startErr)
				}
				return
			}
			if checkErr == nil || startErr == nil {
				t.Fatalf("Check: %v; Start: %v; want both to refuse with %q", checkErr, startErr, tc.want)
			}
			for _, err := range []error{checkErr, startErr} {
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("error %q does not contain %q", err, tc.want)
				}
			}
		})
	}
}

// TestCheckAcceptsPortInUse: a TCP port another process holds is the one
// thing Start refuses and Check accepts, since during a restart the running
// proxy holds the port the new configuration is checked for.
func TestCheckAcceptsPortInUse(t *testing.T) {
	backends := proxytest.StartRedisBackends(t, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	yaml := proxytest.PoolYAML(ln.Addr().String(), backends)
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if err := proxy.Check(cfg); err != nil {
		t.Errorf("Check: %v; want nil", err)
	}
	proxytest.WantErr(t, proxytest.StartErr(t, yaml), `pool "alpha": key "listen": `, "address already in use", "(line 2)")
}

// dirEntries lists the names in dir.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestCheckAsksNoSentinel: New and Check (what shardproxy -t runs) dial
// nothing, even for a pool whose Sentinels do not answer (listeners here
// that accept and never reply): no connection reaches them and Check
// returns at once; Start asks them.
func TestCheckAsksNoSentinel(t *testing.T) {
	var accepts atomic.Int64
	var sentinels []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				accepts.Add(1)
				t.Cleanup(func() { c.Close() })
			}
		}()
		sentinels = append(sentinels, ln.Addr().String())
	}
	yaml := proxytest.Pool{Servers: []string{proxytest.FreeListen(t) + ":1 shard1", proxytest.FreeListen(t) + ":1 shard2"},
		Keys: []string{"sentinels: [" + strings.Join(sentinels, ", ") + "]"}}.YAML("alpha", proxytest.FreeListen(t))
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := proxy.Check(cfg); err != nil {
		t.Fatalf("Check: %v", err)
	}
	took := time.Since(start)
	px, err := proxy.New(cfg, proxy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	t.Logf("Check took %v; %d connections to the Sentinels after Check and New", took, accepts.Load())
	if n := accepts.Load(); n != 0 {
		t.Errorf("%d connections to the Sentinels after Check and New, want 0", n)
	}
	if took > 100*time.Millisecond {
		t.Errorf("Check took %v with Sentinels that do not answer, want well under 100ms", took)
	}
	if err := px.Start(); err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	if n := accepts.Load(); n == 0 {
		t.Error("Start asked no Sentinel")
	}
}

// TestStartStatsPortInUse: Start refuses a stats address another process
// holds, saying so, and leaves nothing listening: the pool's TCP port is
// free and the other pool's unix socket path is not there.
func TestStartStatsPortInUse(t *testing.T) {
	backends := proxytest.StartRedisBackends(t, 1)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(testservers.FreePort(t, "127.0.0.1")))
	sock := filepath.Join(t.TempDir(), "s.sock")
	yaml := proxytest.PoolYAML(listen, backends) + strings.Replace(proxytest.PoolYAML(sock, backends), "alpha:", "beta:", 1)
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	px, err := proxy.New(cfg, proxy.Options{StatsAddr: busy.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	err = px.Start()
	proxytest.WantErr(t, err, "stats: listen tcp "+busy.Addr().String(), "address already in use")
	if ln, err := net.Listen("tcp", listen); err != nil {
		t.Errorf("the pool's port after the failed Start: %v", err)
	} else {
		ln.Close()
	}
	if _, err := os.Stat(sock); err == nil {
		t.Errorf("the unix socket %s is left after the failed Start", sock)
	}
}
