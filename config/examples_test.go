package config

import (
	"path/filepath"
	"testing"
	"time"
)

// TestExampleFiles loads every example in configs/ and checks what each one
// promises.
func TestExampleFiles(t *testing.T) {
	tests := []struct {
		file  string
		check func(t *testing.T, c *Config)
	}{
		{"demo.yml", func(t *testing.T, c *Config) {
			p := onlyPool(t, c, "demo")
			if !p.Redis || p.Listen.Addr != "127.0.0.1:22121" || p.Distribution != "ketama" || p.Hash != "fnv1a_64" ||
				p.HashTag != "{}" || p.ServerConnections != 1 {
				t.Errorf("demo pool: %+v", p)
			}
			wantAddrs(t, p, "127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003", "127.0.0.1:7004")
		}},
		{"memcache.yml", func(t *testing.T, c *Config) {
			p := onlyPool(t, c, "memcache")
			if p.Redis || p.Listen.Addr != "127.0.0.1:22122" {
				t.Errorf("memcache pool: %+v", p)
			}
			wantAddrs(t, p, "127.0.0.1:11311", "127.0.0.1:11312", "127.0.0.1:11313", "127.0.0.1:11314")
		}},
		{"jump.yml", func(t *testing.T, c *Config) {
			p := onlyPool(t, c, "shards")
			if p.Distribution != "jump" || len(p.Slots) != SlotCount || p.Slots[0] != 0 || p.Slots[64] != 1 ||
				p.Slots[191] != 2 || p.Slots[255] != 3 {
				t.Errorf("jump pool: %+v", p)
			}
		}},
		{"secure.yml", func(t *testing.T, c *Config) {
			p := onlyPool(t, c, "secure")
			want := ServerTLS{Enabled: true, CAFile: "/etc/shardproxy/redis-ca.crt", ServerName: "redis.internal"}
			if !p.Redis || p.RedisUsername != "app" || p.RedisAuth == "" || p.EjectMode != EjectFailFast ||
				!p.AutoEjectHosts || p.ClientIdleTimeout != 5*time.Minute || p.ClientWriteTimeout != 10*time.Second ||
				p.MaxRequestSize != 16<<20 || p.MaxArgs != 10000 || p.ClientConnections != 1000 ||
				!p.TLS.Enabled() || p.TLS.ClientCAFile == "" || p.ServerTLS != want {
				t.Errorf("secure pool: %+v", p)
			}
		}},
		{"sentinel.yml", func(t *testing.T, c *Config) {
			p := onlyPool(t, c, "ha")
			if !p.Sentinel.Enabled() || len(p.Sentinel.Addrs) != 3 || p.Sentinel.ReplicaReads ||
				p.Servers[0].Ident != "shard1" || p.Servers[1].Ident != "shard2" {
				t.Errorf("ha pool: %+v", p)
			}
		}},
		{"cluster.yml", func(t *testing.T, c *Config) {
			p := onlyPool(t, c, "cluster")
			if !p.RedisCluster || len(p.Servers) != 3 || p.ClusterRetryTimeout != 5*time.Second || p.Sentinel.ReplicaReads {
				t.Errorf("cluster pool: %+v", p)
			}
		}},
		{"nutcracker.yml", func(t *testing.T, c *Config) {
			if len(c.Pools) != 2 || c.Pools[0].Name != "cache" || c.Pools[1].Name != "sessions" {
				t.Fatalf("pools: %+v", c.Pools)
			}
			p := c.Pools[0]
			if !p.Redis || p.RedisAuth == "" || p.Timeout != 400*time.Millisecond || !p.TCPKeepalive ||
				p.ClientConnections != 10000 || p.Servers[2].Ident != "redis-3" || p.Servers[2].Weight != 2 {
				t.Errorf("cache pool: %+v", p)
			}
			if s := c.Pools[1].Servers[0]; s.Ident != "127.0.0.1" || c.Pools[1].Redis {
				t.Errorf("sessions pool: %+v", c.Pools[1])
			}
		}},
	}
	files, err := filepath.Glob(filepath.Join("..", "configs", "*.yml"))
	if err != nil || len(files) != len(tests) {
		t.Fatalf("configs/*.yml: %v %v; want the %d files this test knows", files, err, len(tests))
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			c, err := Load(filepath.Join("..", "configs", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func onlyPool(t *testing.T, c *Config, name string) *Pool {
	t.Helper()
	if len(c.Pools) != 1 || c.Pools[0].Name != name {
		t.Fatalf("want one pool %q, got %+v", name, c.Pools)
	}
	return c.Pools[0]
}

func wantAddrs(t *testing.T, p *Pool, addrs ...string) {
	t.Helper()
	if len(p.Servers) != len(addrs) {
		t.Fatalf("got %d servers, want %d", len(p.Servers), len(addrs))
	}
	for i, a := range addrs {
		if p.Servers[i].Addr != a {
			t.Errorf("server %d is %s, want %s", i, p.Servers[i].Addr, a)
		}
	}
}
