package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestSentinelKeys(t *testing.T) {
	base := "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n"
	servers := "  servers:\n    - 127.0.0.1:6379:1 shard1\n    - 127.0.0.1:6380:1 shard2\n"
	cfg, err := Parse([]byte(base + servers + "  sentinels:\n    - 127.0.0.1:26379\n    - \"[::1]:26380\"\n" +
		"  sentinel_auth: pw\n  sentinel_username: proxy\n  replica_reads: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Sentinel{Addrs: []string{"127.0.0.1:26379", "[::1]:26380"}, Username: "proxy", Password: "pw", ReplicaReads: true}
	if got := cfg.Pools[0].Sentinel; !reflect.DeepEqual(got, want) {
		t.Errorf("Sentinel %+v, want %+v", got, want)
	}
	bad := []struct{ yaml, want string }{
		{base + servers + "  sentinels: []\n", "at least one"},
		{base + servers + "  sentinels:\n    - 127.0.0.1\n", "host:port"},
		{base + servers + "  sentinels:\n    - 127.0.0.1:0\n", "bad port"},
		{base + servers + "  sentinels:\n    - 127.0.0.1:26379\n    - 127.0.0.1:26379\n", "twice"},
		{base + "  servers:\n    - 127.0.0.1:6379:1\n  sentinels:\n    - 127.0.0.1:26379\n", "needs a name"},
		{"alpha:\n  listen: 127.0.0.1:22121\n" + servers + "  sentinels:\n    - 127.0.0.1:26379\n", "needs redis: true"},
		{base + servers + "  sentinel_auth: pw\n", "sentinel_auth needs sentinels"},
		{base + servers + "  sentinels:\n    - 127.0.0.1:26379\n  sentinel_username: u\n", "needs sentinel_auth"},
		{base + servers + "  replica_reads: true\n", "replica_reads needs sentinels"},
		{base + "  servers:\n    - /tmp/r.sock:1 shard1\n  sentinels:\n    - 127.0.0.1:26379\n", "TCP"},
	}
	for _, c := range bad {
		_, err := Parse([]byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.yaml, err, c.want)
		}
	}
}

func TestSentinelChangeIsServerSetting(t *testing.T) {
	a := &Pool{Redis: true, Sentinel: Sentinel{Addrs: []string{"127.0.0.1:26379"}}}
	b := &Pool{Redis: true, Sentinel: Sentinel{Addrs: []string{"127.0.0.1:26380"}}}
	if a.SameServerSettings(b) {
		t.Error("pools following different Sentinels have the same server settings")
	}
}
