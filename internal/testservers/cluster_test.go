//go:build linux

package testservers

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	code := m.Run()
	CloseSharedCluster()
	os.Exit(code)
}

// TestClusterKillRestart kills a primary of a cluster of its own, waits for
// its replica to take its slots, and restarts it: it comes back, with its
// node id, as a replica of the node that replaced it.
func TestClusterKillRestart(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := NewCluster(t, ClusterOptions{})
	t.Logf("cluster up after %v", time.Since(start))
	p := c.Primaries()[0]
	slots := c.Slots(p)
	r := c.ReplicasOf(p)[0]

	start = time.Now()
	c.Kill(p)
	c.WaitHealthy(t, 30*time.Second)
	t.Logf("failover after SIGKILL: %v", time.Since(start))
	if c.Role(r) != "master" || fmt.Sprint(c.Slots(r)) != fmt.Sprint(slots) {
		t.Fatalf("replica %s: role %q, slots %v; want master of %v", r.Addr, c.Role(r), c.Slots(r), slots)
	}

	start = time.Now()
	c.Restart(p)
	c.WaitHealthy(t, 30*time.Second)
	t.Logf("rejoined after restart: %v", time.Since(start))
	if got := c.ReplicasOf(r); len(got) != 1 || got[0] != p {
		t.Fatalf("replicas of %s: %v, want the restarted %s", r.Addr, got, p.Addr)
	}
	if c.Role(p) != "slave" {
		t.Fatalf("restarted %s has role %q", p.Addr, c.Role(p))
	}
}

// TestClusterUp checks the shared cluster: three primaries with one replica
// each, every slot covered once, every node's bus port reserved.
func TestClusterUp(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := SharedCluster(t)
	t.Logf("shared cluster up (or already up) after %v", time.Since(start))
	if len(c.Nodes) != 6 {
		t.Fatalf("%d nodes, want 6", len(c.Nodes))
	}
	ps := c.Primaries()
	if len(ps) != 3 {
		t.Fatalf("%d primaries, want 3", len(ps))
	}
	var owned [ClusterSlots]int
	for _, p := range ps {
		if c.Role(p) != "master" {
			t.Errorf("primary %s has role %q", p.Addr, c.Role(p))
		}
		if rs := c.ReplicasOf(p); len(rs) != 1 {
			t.Errorf("primary %s has %d replicas, want 1", p.Addr, len(rs))
		}
		for _, r := range c.Slots(p) {
			for s := r[0]; s <= r[1]; s++ {
				owned[s]++
			}
		}
	}
	for s, n := range owned {
		if n != 1 {
			t.Fatalf("slot %d owned by %d primaries", s, n)
		}
	}
	for _, n := range c.Nodes {
		if !handedOut[n.Port] || !handedOut[n.Port+ClusterBusOffset] {
			t.Errorf("node %s: port or bus port not reserved", n.Addr)
		}
		if len(n.ID) != 40 {
			t.Errorf("node %s: id %q", n.Addr, n.ID)
		}
	}
}

// TestClusterKeyOnOwner writes keys through their slot's owner, reads them
// there, and gets MOVED to the owner from every other node.
func TestClusterKeyOnOwner(t *testing.T) {
	t.Parallel()
	c := SharedCluster(t)
	for i := range 20 {
		key := fmt.Sprintf("owner-test-%d", i)
		slot := c.KeySlot(t, key)
		owner := c.Owner(slot)
		if owner == nil {
			t.Fatalf("slot %d of %s: no owner", slot, key)
		}
		mustDo(t, owner.Addr, "SET", key, "v"+key)
		if got, err := query(owner.Addr, "", "GET", key); err != nil || got != "v"+key {
			t.Fatalf("%s: GET %s = %v, %v", owner.Addr, key, got, err)
		}
		want := fmt.Sprintf("MOVED %d %s", slot, owner.Addr)
		for _, n := range c.Nodes {
			if n == owner {
				continue
			}
			if _, err := query(n.Addr, "", "GET", key); err == nil || err.Error() != want {
				t.Fatalf("%s (%s): GET %s: %v, want %q", n.Addr, c.Role(n), key, err, want)
			}
		}
	}
}

// TestClusterReplica checks that each replica reports its primary, in INFO
// replication and in its own line of CLUSTER NODES, and gets its writes.
func TestClusterReplica(t *testing.T) {
	t.Parallel()
	c := SharedCluster(t)
	for _, p := range c.Primaries() {
		for _, r := range c.ReplicasOf(p) {
			if c.Role(r) != "slave" {
				t.Errorf("replica %s has role %q", r.Addr, c.Role(r))
			}
			if got := replicationField(t, r.Addr, "master_port"); got != strconv.Itoa(p.Port) {
				t.Errorf("replica %s: master_port %s, want %d", r.Addr, got, p.Port)
			}
			if got := myClusterLine(t, r.Addr); !strings.Contains(got, "slave "+p.ID) {
				t.Errorf("replica %s: CLUSTER NODES says %q, want a replica of %s", r.Addr, got, p.ID)
			}
			key := "replica-test-0"
			for i := 1; c.Owner(c.KeySlot(t, key)) != p; i++ {
				key = fmt.Sprintf("replica-test-%d", i)
			}
			mustDo(t, p.Addr, "SET", key, "x")
			if got, err := query(p.Addr, "", "WAIT", "1", "5000"); err != nil || got != int64(1) {
				t.Errorf("primary %s: WAIT 1 = %v, %v; want its replica to acknowledge", p.Addr, got, err)
			}
		}
	}
}

// myClusterLine is the line of CLUSTER NODES of addr about itself.
func myClusterLine(t *testing.T, addr string) string {
	t.Helper()
	r, err := query(addr, "", "CLUSTER", "NODES")
	if err != nil {
		t.Fatalf("%s: CLUSTER NODES: %v", addr, err)
	}
	for _, line := range strings.Split(fmt.Sprint(r), "\n") {
		if strings.Contains(line, "myself") {
			return line
		}
	}
	t.Fatalf("%s: no myself line in CLUSTER NODES:\n%v", addr, r)
	return ""
}
