//go:build linux

package cluster

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/pools"
)

// fakePool is a Keeper's pool: it makes plain RESP servers and keeps
// what it is handed.
type fakePool struct {
	mu     sync.Mutex
	made   map[string]*config.Pool // the settings each node was made with, by address
	routed chan ServerMap
}

func newFakePool() *fakePool {
	return &fakePool{made: map[string]*config.Pool{}, routed: make(chan ServerMap, 16)}
}

func (f *fakePool) NewServer(cfg *config.Pool, line config.Server) *pools.Server {
	f.mu.Lock()
	f.made[line.Addr] = cfg
	f.mu.Unlock()
	return pools.NewServer(pools.Options{
		Addr:    line.Addr,
		Name:    line.Ident,
		Frame:   func(b []byte, _ uint8) (int, error) { return resp.ReadReply(b) },
		IsError: resp.IsError,
	})
}

func (f *fakePool) Route(sm ServerMap)     { f.routed <- sm }
func (f *fakePool) Retire(s *pools.Server) { s.Close() }

// next is the next ServerMap the Keeper hands over.
func (f *fakePool) next(t *testing.T) ServerMap {
	t.Helper()
	select {
	case sm := <-f.routed:
		return sm
	case <-time.After(10 * time.Second):
		t.Fatal("no map routed in 10 s")
		return ServerMap{}
	}
}

// TestKeeperFetchesOverItsNodes runs a Keeper over a real cluster (3
// primaries, a replica each) from one seed: it hands the pool a map that
// covers every slot, with a server per node at the node's address, the
// same server Node returns; a refresh hands the same servers again; a
// node made after SetConfig has the new settings.
func TestKeeperFetchesOverItsNodes(t *testing.T) {
	c := testservers.SharedCluster(t)
	fp := newFakePool()
	cfg := &config.Pool{Name: "c", Servers: []config.Server{{Addr: c.Nodes[0].Addr}}}
	k := NewKeeper(fp, cfg, quiet())
	defer k.Close()
	if got := k.NoSlot(false); got != noSlotMapYet {
		t.Fatalf("NoSlot before a map: %q", got)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		k.Topology().Run(done)
	}()
	defer wg.Wait()
	defer close(done)

	sm := fp.next(t)
	if !sm.Map.Covered() || len(sm.Primaries) != 3 || len(sm.Replicas) != 3 {
		t.Fatalf("map: %d slots uncovered, %d primaries, %d replica lists", sm.Map.Uncovered(), len(sm.Primaries), len(sm.Replicas))
	}
	for i, s := range sm.Map.Shards {
		if sm.Primaries[i].Addr() != s.Primary.Addr || k.Node(s.Primary.Addr) != sm.Primaries[i] {
			t.Fatalf("shard %d: primary %s, server %s", i, s.Primary.Addr, sm.Primaries[i].Addr())
		}
		if len(sm.Replicas[i]) != len(s.Replicas) || sm.Replicas[i][0].Addr() != s.Replicas[0].Addr {
			t.Fatalf("shard %d: replicas %+v, servers %d", i, s.Replicas, len(sm.Replicas[i]))
		}
	}
	if n := k.Nodes(); n != len(c.Nodes) {
		t.Fatalf("Nodes = %d, want %d", n, len(c.Nodes))
	}
	k.Topology().Refresh()
	if again := fp.next(t); !again.Same(sm) {
		t.Fatal("a refresh of the same cluster handed other servers")
	}

	cfg2 := &config.Pool{Name: "c", Servers: cfg.Servers, Timeout: time.Second}
	k.SetConfig(cfg2)
	k.Node("127.0.0.1:1")
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if fp.made["127.0.0.1:1"] != cfg2 || fp.made[c.Nodes[0].Addr] != cfg {
		t.Fatal("a node made after SetConfig does not have its settings, or one before has")
	}
	if got := k.NoSlot(true); got != slotNotServed {
		t.Fatalf("NoSlot with a map: %q", got)
	}
	if !slices.Contains(sm.Primaries, k.Node(sm.Map.Shards[0].Primary.Addr)) {
		t.Fatal("Node made a second server for a known node")
	}
}
