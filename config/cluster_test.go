package config

import (
	"testing"
	"time"
)

func TestClusterPool(t *testing.T) {
	p := parsePool1(t, onePool("  redis: true\n  redis_cluster: true\n  cluster_retry_timeout: 1500\n  replica_reads: true\n"))
	if !p.RedisCluster || p.ClusterRetryTimeout != 1500*time.Millisecond || !p.Sentinel.ReplicaReads {
		t.Fatalf("got %+v", p)
	}
	p = parsePool1(t, onePool("  redis: true\n  redis_cluster: true\n"))
	if p.ClusterRetryTimeout != DefaultClusterRetryTimeout || p.Timeout != DefaultClusterTimeout {
		t.Fatalf("defaults: cluster_retry_timeout %v, timeout %v", p.ClusterRetryTimeout, p.Timeout)
	}
	p = parsePool1(t, onePool("  redis: true\n  redis_cluster: true\n  timeout: 250\n"))
	if p.Timeout != 250*time.Millisecond {
		t.Fatalf("timeout given: %v", p.Timeout)
	}
	if p = parsePool1(t, onePool("  redis: true\n")); p.Timeout != 0 {
		t.Fatalf("a plain pool's timeout: %v, want none (nutcracker's)", p.Timeout)
	}
}

// TestClusterPoolRefuses: each key that makes no sense in a cluster pool
// is refused with an error naming it and its line, and saying why.
func TestClusterPoolRefuses(t *testing.T) {
	const c = "  redis: true\n  redis_cluster: true\n" // lines 3 and 4
	for _, tc := range []struct {
		extra, key string
		line       int
		want       string
	}{
		{"  redis_cluster: true\n", "redis_cluster", 3, "redis_cluster needs redis: true"},
		{c + "  hash: murmur\n", "hash", 5, "a cluster places keys itself"},
		{c + "  hash_tag: \"{}\"\n", "hash_tag", 5, "remove hash_tag"},
		{c + "  distribution: ketama\n", "distribution", 5, "remove distribution"},
		{c + "  redis_db: 2\n", "redis_db", 5, "a cluster has only database 0"},
		{c + "  sentinels:\n    - 127.0.0.1:26379\n", "sentinels", 5, "a cluster fails over itself"},
		{c + "  auto_eject_hosts: true\n", "auto_eject_hosts", 5, "never ejected"},
		{c + "  server_failure_limit: 3\n", "server_failure_limit", 5, "remove server_failure_limit"},
		{c + "  server_retry_timeout: 3000\n", "server_retry_timeout", 5, "remove server_retry_timeout"},
		{"  redis: true\n  cluster_retry_timeout: 100\n", "cluster_retry_timeout", 4, "needs redis_cluster: true"},
		{"  redis: true\n  replica_reads: true\n", "replica_reads", 4, "needs sentinels or redis_cluster"},
	} {
		_, err := Parse([]byte(onePool(tc.extra)))
		if err == nil {
			t.Errorf("%q: accepted", tc.extra)
			continue
		}
		wantError(t, err, "alpha", tc.key, tc.line, tc.want)
	}
	_, err := Parse([]byte("alpha:\n  listen: 127.0.0.1:22121\n" + c + "  servers:\n    - /tmp/redis.sock:1\n"))
	if err == nil {
		t.Fatal("a unix socket seed: accepted")
	}
	wantError(t, err, "alpha", "servers", 5, "servers are TCP seed nodes")
}
