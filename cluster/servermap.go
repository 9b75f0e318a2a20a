package cluster

import (
	"slices"

	"github.com/shardproxy/shardproxy/pools"
)

// ServerMap is a slot map with the server of each of its nodes: what a
// Keeper hands its pool to route by. Primaries[i] is the server of
// Map.Shards[i]'s primary, Replicas[i] those of its replicas. Map is nil
// before the first map. A ServerMap is never changed: Patch makes
// another.
type ServerMap struct {
	Map       *Map
	Primaries []*pools.Server
	Replicas  [][]*pools.Server
}

// Same reports whether sm and o both have a map, with the same slots on
// the same servers.
func (sm ServerMap) Same(o ServerMap) bool {
	return sm.Map != nil && o.Map != nil && sm.Map.Slots == o.Map.Slots && sameServers(sm.Primaries, o.Primaries) &&
		slices.EqualFunc(sm.Replicas, o.Replicas, sameServers)
}

func sameServers(a, b []*pools.Server) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Patch returns sm with srv (at addr) the owner of slot, as a MOVED
// says, until the next refresh brings the whole map; srv becomes a shard
// of its own when it is no primary of sm. It reports false, and no map,
// when there is nothing to patch: no map yet, srv owns the slot already,
// or the map has as many shards as it can hold.
func (sm ServerMap) Patch(slot int, addr string, srv *pools.Server) (ServerMap, bool) {
	if sm.Map == nil {
		return ServerMap{}, false
	}
	if i := sm.Map.Slots[slot]; i != Uncovered && sm.Primaries[i] == srv {
		return ServerMap{}, false
	}
	m := &Map{Shards: sm.Map.Shards, Slots: sm.Map.Slots}
	ring, replicas := sm.Primaries, sm.Replicas
	i := slices.Index(ring, srv)
	if i < 0 {
		if len(ring) >= int(Uncovered) {
			return ServerMap{}, false
		}
		i = len(ring)
		m.Shards = append(slices.Clip(m.Shards), Shard{Primary: Node{Addr: addr}})
		ring = append(slices.Clip(ring), srv)
		replicas = append(slices.Clip(replicas), nil)
	}
	m.Slots[slot] = uint16(i)
	return ServerMap{Map: m, Primaries: ring, Replicas: replicas}, true
}
