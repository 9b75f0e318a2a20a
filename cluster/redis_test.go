//go:build linux

package cluster

import (
	"bufio"
	"net"
	"os"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/hashring"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testservers.CloseSharedCluster()
	os.Exit(code)
}

// TestParseSlotsFromRedis reads the slot map of a real cluster (3
// primaries, a replica each) from every node: all agree, every slot is
// covered, each shard's primary and replica are the fixture's, and a key's
// owner by ClusterSlot and the map is the node that serves it (GET there
// answers, not MOVED).
func TestParseSlotsFromRedis(t *testing.T) {
	c := testservers.SharedCluster(t)
	var first *Map
	for _, n := range c.Nodes {
		m := slotsOf(t, n.Addr)
		if !m.Covered() || len(m.Shards) != 3 {
			t.Fatalf("%s: %d shards, %d slots uncovered", n.Addr, len(m.Shards), m.Uncovered())
		}
		for _, s := range m.Shards {
			p := c.NodeAt(s.Primary.Addr)
			if p == nil || p.ID != s.Primary.ID || len(s.Replicas) != 1 || c.ReplicasOf(p)[0].Addr != s.Replicas[0].Addr {
				t.Fatalf("%s: shard %+v does not match the cluster", n.Addr, s)
			}
		}
		if first == nil {
			first = m
		} else if m.Slots != first.Slots {
			t.Fatalf("%s's map differs from %s's", n.Addr, c.Nodes[0].Addr)
		}
	}
	for _, k := range []string{"a", "{user:1}:name", "123456789", "zzz", "{}x"} {
		owner := first.Owner([]byte(k))
		if want := c.Owner(hashring.ClusterSlot([]byte(k))); owner == nil || owner.Primary.Addr != want.Addr {
			t.Fatalf("key %q: owner %+v, want %s", k, owner, want.Addr)
		}
		if got := do(t, owner.Primary.Addr, "GET", k); len(got) > 0 && got[0] == '-' {
			t.Errorf("GET %q on its owner: %q", k, got)
		}
	}
}

// slotsOf asks addr for CLUSTER SLOTS and parses it.
func slotsOf(t *testing.T, addr string) *Map {
	t.Helper()
	raw := do(t, addr, "CLUSTER", "SLOTS")
	v, _, err := resp.ParseValue(raw)
	if err != nil {
		t.Fatal(err)
	}
	host, _, _ := net.SplitHostPort(addr)
	m, err := ParseSlots(v, host)
	if err != nil {
		t.Fatalf("%s: %v", addr, err)
	}
	return m
}

// do sends one command to addr and returns its raw reply.
func do(t *testing.T, addr string, args ...string) []byte {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	if _, err := nc.Write(resp.AppendCommand(nil, bs...)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(nc)
	var buf []byte
	for {
		b, err := r.ReadByte()
		if err != nil {
			t.Fatal(err)
		}
		buf = append(buf, b)
		if n, err := resp.ReadReply(buf); err != nil {
			t.Fatal(err)
		} else if n > 0 {
			return buf
		}
	}
}
