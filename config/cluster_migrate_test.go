package config

import (
	"reflect"
	"testing"
	"time"
)

// clusterMigratePool is a cluster pool over seeds 7001 and 7002 whose line
// 4 on are extra; migrate_from's lines follow (line 9 on).
func clusterMigratePool(extra, migrate string) string {
	return "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  redis_cluster: true\n" + extra +
		"  servers:\n    - 127.0.0.1:7001:1\n    - 127.0.0.1:7002:1\n" +
		"  migrate_from:\n" + migrate
}

// TestClusterMigrateFrom: a cluster pool takes migrate_from, whose
// placement describes the old nutcracker pool on its own: the keys it
// omits take nutcracker's defaults (fnv1a_64, ketama, no hash tag), never
// the cluster pool's.
func TestClusterMigrateFrom(t *testing.T) {
	old := []Server{
		{Network: "tcp", Addr: "127.0.0.1:6001", Host: "127.0.0.1", Port: 6001, Weight: 1, Name: "a", Ident: "a"},
		{Network: "tcp", Addr: "127.0.0.1:6002", Host: "127.0.0.1", Port: 6002, Weight: 2, Ident: "127.0.0.1:6002"},
	}
	lines := "    servers:\n      - 127.0.0.1:6001:1 a\n      - 127.0.0.1:6002:2\n"
	at := time.Date(2026, 11, 30, 10, 30, 0, 0, time.UTC)
	tests := []struct {
		name, yml string
		want      *Placement
	}{
		{"servers only: nutcracker's defaults", clusterMigratePool("", lines),
			&Placement{Servers: old, Hash: "fnv1a_64", Distribution: "ketama"}},
		{"every placement key", clusterMigratePool("  migrate_rate: 5000\n",
			lines+"    hash: murmur\n    hash_tag: \"{}\"\n    distribution: modula\n"),
			&Placement{Servers: old, Hash: "murmur", HashTag: "{}", Distribution: "modula"}},
		{"jump with slots, start_at", clusterMigratePool("",
			lines+"    distribution: jump\n    slots: {a: 0-99, 127.0.0.1:6002: 100-255}\n    start_at: 2026-11-30T10:30:00Z\n"),
			&Placement{Servers: old, Hash: "fnv1a_64", Distribution: "jump", Slots: slotsOf(100, 156), StartAt: at}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := parsePool1(t, tc.yml)
			if !reflect.DeepEqual(p.MigrateFrom, tc.want) {
				t.Errorf("MigrateFrom\n got %+v\nwant %+v", p.MigrateFrom, tc.want)
			}
			if !p.RedisCluster || len(p.Servers) != 2 || p.Servers[0].Addr != "127.0.0.1:7001" {
				t.Errorf("the pool: redis_cluster %v, servers %+v; want the two seeds", p.RedisCluster, p.Servers)
			}
		})
	}
}

func TestClusterMigrateFromErrors(t *testing.T) {
	lines := "    servers:\n      - 127.0.0.1:6001:1\n"
	tests := []struct {
		name, yml, key string
		line           int
		contains       []string
	}{
		{"no servers", clusterMigratePool("", "    hash: md5\n"), "migrate_from.servers", 8,
			[]string{"required in a cluster pool", "seed nodes"}},
		{"a seed among the old servers", clusterMigratePool("", "    servers:\n      - 127.0.0.1:6001:1\n      - 127.0.0.1:7002:1\n"),
			"migrate_from.servers", 9, []string{`server "127.0.0.1:7002" is also a seed node of the cluster`}},
		{"unix socket", clusterMigratePool("", "    servers:\n      - /tmp/r.sock:1 u\n"),
			"migrate_from.servers", 9, []string{"unix socket"}},
		{"the pool's hash", clusterMigratePool("  hash: murmur\n", lines), "hash", 5,
			[]string{"a cluster places keys itself", "the old pool's placement goes in migrate_from: remove hash"}},
		{"the pool's distribution", clusterMigratePool("  distribution: jump\n", lines), "distribution", 5,
			[]string{"the old pool's placement goes in migrate_from: remove distribution"}},
		{"the pool's hash_tag", clusterMigratePool("  hash_tag: \"{}\"\n", lines), "hash_tag", 5,
			[]string{"goes in migrate_from: remove hash_tag"}},
		{"slots without jump", clusterMigratePool("", lines+"    slots: {127.0.0.1:6001: 0-255}\n"), "migrate_from.slots", 11,
			[]string{"needs distribution: jump"}},
		{"from random", clusterMigratePool("", lines+"    distribution: random\n"), "migrate_from.distribution", 11,
			[]string{"random places no key"}},
		{"unknown key", clusterMigratePool("", lines+"    redis_db: 2\n"), "migrate_from", 11,
			[]string{`unknown key "redis_db"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yml))
			wantError(t, err, "alpha", tc.key, tc.line, tc.contains...)
		})
	}
}

// TestClusterMigrateFromSame: a reload sees a change of migrate_from in a
// cluster pool, and none when it is the same.
func TestClusterMigrateFromSame(t *testing.T) {
	a := parsePool1(t, clusterMigratePool("", "    servers:\n      - 127.0.0.1:6001:1\n"))
	b := parsePool1(t, clusterMigratePool("", "    servers:\n      - 127.0.0.1:6001:1\n"))
	c := parsePool1(t, clusterMigratePool("", "    servers:\n      - 127.0.0.1:6001:1\n    hash: md5\n"))
	if !a.Same(b) || a.Same(c) || !reflect.DeepEqual(a.MigrateFrom, b.MigrateFrom) {
		t.Errorf("Same: a~b %v (want true), a~c %v (want false)", a.Same(b), a.Same(c))
	}
}
