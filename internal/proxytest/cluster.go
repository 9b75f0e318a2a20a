package proxytest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/proxy"
)

// ClusterYAML is a cluster pool (redis_cluster: true) named name on
// listen, with seeds as its servers and keys as further "key: value"
// lines.
func ClusterYAML(name, listen string, seeds []string, keys ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:\n  listen: %q\n  redis: true\n  redis_cluster: true\n", name, listen)
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s\n", k)
	}
	b.WriteString("  servers:\n")
	for _, s := range seeds {
		fmt.Fprintf(&b, "    - %s:1\n", s)
	}
	return b.String()
}

// StartClusterProxy starts a proxy with one cluster pool in front of c,
// seeded with its first node, and waits until the pool has taken a slot
// map that covers every slot (a GET of each primary's keys is answered).
// It returns the pool's address.
func StartClusterProxy(tb testing.TB, c *testservers.Cluster, keys ...string) (string, *proxy.Proxy) {
	tb.Helper()
	listen := FreeListen(tb)
	px := StartProxy(tb, ClusterYAML("cluster", listen, []string{c.Nodes[0].Addr}, keys...))
	WaitClusterReady(tb, listen)
	return listen, px
}

// WaitClusterReady waits until a cluster pool at addr serves every slot:
// a GET of a key in each of a spread of slots is not answered
// CLUSTERDOWN.
func WaitClusterReady(tb testing.TB, addr string) {
	tb.Helper()
	c := Dial(tb, addr)
	defer c.Net.Close()
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; ; {
		rep := c.Do("GET", fmt.Sprintf("ready:%d", i))
		switch {
		case !strings.HasPrefix(rep, "-"):
			if i++; i == 64 {
				return
			}
			continue
		case time.Now().After(deadline):
			tb.Fatalf("cluster pool at %s not ready: %q", addr, rep)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
