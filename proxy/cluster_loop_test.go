//go:build linux

package proxy_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/hashring"
	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// TestClusterRedirectLoop: two nodes that each say the other serves a
// slot (a cluster whose nodes disagree) send a request back and forth;
// the proxy follows 16 redirects, then answers TRYAGAIN with its own
// text: never a MOVED, which would send the client around the proxy.
func TestClusterRedirectLoop(t *testing.T) {
	c := testservers.SharedCluster(t)
	addr, px := proxytest.StartClusterProxy(t, c)
	key := "{loop}:k"
	slot := hashring.ClusterSlot([]byte(key))
	a := c.Owner(slot)
	var b *testservers.ClusterNode
	for _, p := range c.Primaries() {
		if p != a {
			b = p
			break
		}
	}
	// a migrates the slot to b, which was not told to import it: a
	// answers ASK b for a key it does not have, b answers MOVED a.
	if got := proxytest.Command(t, a.Addr, "CLUSTER", "SETSLOT", fmt.Sprint(slot), "MIGRATING", b.ID); got != "+OK" {
		t.Fatalf("SETSLOT MIGRATING on a: %q", got)
	}
	t.Cleanup(func() { proxytest.Command(t, a.Addr, "CLUSTER", "SETSLOT", fmt.Sprint(slot), "STABLE") })
	before := px.Snapshot().Pools[0].Cluster
	got := proxytest.Command(t, addr, "GET", key)
	want := fmt.Sprintf("-TRYAGAIN the cluster redirected the request 16 times (slot %d): its slot map is changing", slot)
	if got != want || strings.Contains(got, "MOVED") || strings.Contains(got, "ASK ") {
		t.Fatalf("GET: %q, want %q", got, want)
	}
	after := px.Snapshot().Pools[0].Cluster
	if after.Ask-before.Ask != 8 || after.Moved-before.Moved != 8 || after.RetriesExhausted-before.RetriesExhausted != 1 {
		t.Fatalf("redirects followed: before %+v, after %+v", before, after)
	}
}
