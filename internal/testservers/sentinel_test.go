//go:build linux

package testservers

import (
	"strings"
	"testing"
	"time"
)

// TestSentinelFailover kills the primary of one of two shards under three
// sentinels, and checks that its replica takes over with the data, that
// the other shard keeps its primary, and that a forced failover moves the
// primary back once the old one has returned as a replica.
func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	p1 := Redis(t)
	r1 := RedisReplica(t, p1)
	p2 := Redis(t)
	r2 := RedisReplica(t, p2)
	mustDo(t, p1.Addr, "SET", "k", "v1")
	waitValue(t, r1.Addr, "k", "v1")
	ss := Sentinels(t, 3, map[string]string{"shard1": p1.Addr, "shard2": p2.Addr}, SentinelOptions{})

	start := time.Now()
	p1.Kill()
	if got := WaitMaster(t, ss, "shard1", p1.Addr, 20*time.Second); got != r1.Addr {
		t.Fatalf("shard1: sentinels report %s as primary, want its replica %s", got, r1.Addr)
	}
	t.Logf("failover of shard1 after SIGKILL: %v", time.Since(start))
	if role := replicationField(t, r1.Addr, "role"); role != "master" {
		t.Fatalf("promoted %s has role %q", r1.Addr, role)
	}
	waitValue(t, r1.Addr, "k", "v1")
	for _, s := range ss {
		if got, err := MasterAddr(s.Addr, "shard2"); err != nil || got != p2.Addr {
			t.Fatalf("sentinel %s: shard2 primary %q, %v; want it unchanged, %s", s.Addr, got, err, p2.Addr)
		}
	}
	if role := replicationField(t, r2.Addr, "role"); role != "slave" {
		t.Fatalf("shard2's replica %s has role %q", r2.Addr, role)
	}

	mustDo(t, r1.Addr, "SET", "k", "v2")
	p1.RestartReplicaOf(r1.Addr)
	waitValue(t, p1.Addr, "k", "v2")
	start = time.Now()
	Failover(t, ss[0], "shard1", 15*time.Second)
	if got := WaitMaster(t, ss, "shard1", r1.Addr, 20*time.Second); got != p1.Addr {
		t.Fatalf("shard1 after forced failover: sentinels report %s, want %s back", got, p1.Addr)
	}
	t.Logf("forced failover back to %s: %v", p1.Addr, time.Since(start))
	if role := replicationField(t, p1.Addr, "role"); role != "master" {
		t.Fatalf("%s back as primary has role %q", p1.Addr, role)
	}
}

// TestSentinelFailoverOneDown fails a password-protected primary over with
// one of three sentinels down (the two left are a majority), then checks
// that the restarted sentinel, from the configuration it rewrote, learns
// the new primary.
func TestSentinelFailoverOneDown(t *testing.T) {
	t.Parallel()
	const pw = "s3cret"
	p := Redis(t, "--requirepass", pw, "--masterauth", pw)
	r := RedisReplica(t, p, "--requirepass", pw, "--masterauth", pw)
	ss := Sentinels(t, 3, map[string]string{"shard1": p.Addr}, SentinelOptions{AuthPass: pw, Password: "sentinel-" + pw})
	if _, err := query(ss[0].Addr, "", "SENTINEL", "MASTERS"); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("sentinel without its password: %v, want NOAUTH", err)
	}

	ss[2].Kill()
	start := time.Now()
	p.Kill()
	if got := WaitMaster(t, ss[:2], "shard1", p.Addr, 20*time.Second); got != r.Addr {
		t.Fatalf("sentinels report %s as primary, want the replica %s", got, r.Addr)
	}
	t.Logf("failover with one sentinel of three down: %v", time.Since(start))

	ss[2].Restart()
	start = time.Now()
	if got := WaitMaster(t, ss, "shard1", p.Addr, 20*time.Second); got != r.Addr {
		t.Fatalf("sentinels report %s as primary, want %s", got, r.Addr)
	}
	t.Logf("restarted sentinel learned the new primary: %v", time.Since(start))
}

// TestSetOptions checks how RestartReplicaOf replaces arguments.
func TestSetOptions(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args, opts []string
		want       string
	}{
		{"append", []string{"--port", "1", "--save", ""}, []string{"--replicaof", "h", "2"},
			`--port 1 --save  --replicaof h 2`},
		{"replace", []string{"--replicaof", "a", "1", "--port", "1"}, []string{"--replicaof", "b", "2"},
			`--port 1 --replicaof b 2`},
		{"slaveof is replicaof", []string{"--slaveof", "a", "1", "--port", "1"}, []string{"--REPLICAOF", "b", "2"},
			`--port 1 --REPLICAOF b 2`},
		{"no duplicate", []string{"--masterauth", "x"}, []string{"--masterauth", "y", "--masterauth", "z"},
			`--masterauth z`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(setOptions(tc.args, tc.opts), " "); got != tc.want {
				t.Errorf("setOptions(%q, %q) = %q, want %q", tc.args, tc.opts, got, tc.want)
			}
		})
	}
}

func mustDo(t *testing.T, addr string, args ...string) {
	t.Helper()
	if _, err := query(addr, "", args...); err != nil {
		t.Fatalf("%s %v: %v", addr, args, err)
	}
}

// waitValue waits until key has value on the server at addr (replication
// is asynchronous).
func waitValue(t *testing.T, addr, key, value string) {
	t.Helper()
	var got any
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got, err = query(addr, "", "GET", key); err == nil && got == value {
			return
		}
	}
	t.Fatalf("%s: GET %s = %v, %v; want %q", addr, key, got, err, value)
}

// replicationField is one field of INFO replication.
func replicationField(t *testing.T, addr, field string) string {
	t.Helper()
	r, err := query(addr, "", "INFO", "replication")
	if err != nil {
		t.Fatalf("%s: INFO replication: %v", addr, err)
	}
	info, _ := r.(string)
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return v
		}
	}
	t.Fatalf("%s: no %s in INFO replication:\n%s", addr, field, info)
	return ""
}
