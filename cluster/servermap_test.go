package cluster

import (
	"testing"

	"github.com/shardproxy/shardproxy/pools"
)

// servers makes one server per address (no I/O: a server dials when
// first used).
func servers(addrs ...string) []*pools.Server {
	out := make([]*pools.Server, len(addrs))
	for i, a := range addrs {
		out[i] = pools.NewServer(pools.Options{Addr: a, Name: a})
	}
	return out
}

// twoShards is a map whose slots 0-8191 are a's and the rest b's, with a
// replica each. Its slices have room to grow, so that a Patch that
// appended in place would show.
func twoShards() ServerMap {
	m := &Map{Shards: append(make([]Shard, 0, 4),
		Shard{Primary: Node{Addr: "a:1"}, Replicas: []Node{{Addr: "ra:1"}}},
		Shard{Primary: Node{Addr: "b:1"}, Replicas: []Node{{Addr: "rb:1"}}},
	)}
	for s := range m.Slots {
		m.Slots[s] = uint16(s / 8192)
	}
	r := servers("ra:1", "rb:1")
	return ServerMap{Map: m, Primaries: append(make([]*pools.Server, 0, 4), servers("a:1", "b:1")...),
		Replicas: append(make([][]*pools.Server, 0, 4), r[:1], r[1:])}
}

func TestServerMapSame(t *testing.T) {
	sm := twoShards()
	copied := *sm.Map
	other := servers("c:1")[0]
	cases := map[string]struct {
		a, b ServerMap
		want bool
	}{
		"itself":               {sm, sm, true},
		"a copy of its map":    {sm, ServerMap{Map: &copied, Primaries: sm.Primaries, Replicas: sm.Replicas}, true},
		"no map":               {ServerMap{}, sm, false},
		"no map either":        {sm, ServerMap{}, false},
		"another primary":      {sm, ServerMap{Map: sm.Map, Primaries: []*pools.Server{sm.Primaries[0], other}, Replicas: sm.Replicas}, false},
		"another replica":      {sm, ServerMap{Map: sm.Map, Primaries: sm.Primaries, Replicas: [][]*pools.Server{sm.Replicas[0], {other}}}, false},
		"a replica less":       {sm, ServerMap{Map: sm.Map, Primaries: sm.Primaries, Replicas: [][]*pools.Server{sm.Replicas[0], nil}}, false},
		"a slot elsewhere":     {sm, func() ServerMap { s, _ := sm.Patch(0, "b:1", sm.Primaries[1]); return s }(), false},
		"same slots, no shard": {sm, ServerMap{Map: sm.Map, Primaries: sm.Primaries[:1], Replicas: sm.Replicas[:1]}, false},
	}
	for name, c := range cases {
		if got := c.a.Same(c.b); got != c.want {
			t.Errorf("%s: Same = %v, want %v", name, got, c.want)
		}
	}
}

func TestServerMapPatchToAPrimary(t *testing.T) {
	sm := twoShards()
	before := sm.Map.Slots
	if _, ok := sm.Patch(5, "a:1", sm.Primaries[0]); ok {
		t.Fatal("patched a slot to its owner")
	}
	if _, ok := (ServerMap{}).Patch(5, "a:1", sm.Primaries[0]); ok {
		t.Fatal("patched without a map")
	}
	got, ok := sm.Patch(5, "b:1", sm.Primaries[1])
	if !ok || got.Map.Slots[5] != 1 || got.Map.Slots[4] != 0 || got.Map.Slots[6] != 0 {
		t.Fatalf("slot 5 patched to b: ok %v, slots 4-6 %v", ok, got.Map.Slots[4:7])
	}
	if len(got.Primaries) != 2 || len(got.Map.Shards) != 2 || len(got.Replicas) != 2 {
		t.Fatalf("a shard added for a known primary: %d primaries, %d shards", len(got.Primaries), len(got.Map.Shards))
	}
	if sm.Map.Slots != before {
		t.Fatal("Patch changed the map it was given")
	}
}

func TestServerMapPatchToANewNode(t *testing.T) {
	sm := twoShards()
	c := servers("c:1")[0]
	got, ok := sm.Patch(100, "c:1", c)
	if !ok || got.Map.Slots[100] != 2 {
		t.Fatalf("slot 100 patched to a new node: ok %v, slot's shard %d", ok, got.Map.Slots[100])
	}
	if len(got.Primaries) != 3 || got.Primaries[2] != c || got.Map.Shards[2].Primary.Addr != "c:1" ||
		len(got.Replicas) != 3 || got.Replicas[2] != nil {
		t.Fatalf("new shard: primaries %d, shards %+v, replicas %d", len(got.Primaries), got.Map.Shards, len(got.Replicas))
	}
	if len(sm.Primaries) != 2 || len(sm.Map.Shards) != 2 || len(sm.Replicas) != 2 || sm.Map.Slots[100] != 0 {
		t.Fatal("Patch changed the map it was given")
	}
	// A second patch from the first map does not write into the
	// result of the other.
	d := servers("d:1")[0]
	again, _ := sm.Patch(200, "d:1", d)
	if got.Primaries[2] != c || again.Primaries[2] != d || got.Map.Shards[2].Primary.Addr != "c:1" {
		t.Fatal("two patches of one map share their primaries or shards")
	}
}
