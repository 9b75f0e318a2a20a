package cluster

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/hashring"
)

// Node is a cluster node as CLUSTER SLOTS names it.
type Node struct {
	Addr string // host:port
	ID   string // the node's id, when the server gives it
}

// Shard is a primary and its replicas.
type Shard struct {
	Primary  Node
	Replicas []Node
}

// Map is a slot map: the shard serving each slot. Shards are in the
// order CLUSTER SLOTS first names them; Slots holds an index into them, or
// Uncovered.
type Map struct {
	Shards []Shard
	Slots  [hashring.ClusterSlots]uint16
}

// Uncovered marks a slot no shard serves.
const Uncovered = ^uint16(0)

// ErrNotSlots is returned for a reply that is not CLUSTER SLOTS's.
var ErrNotSlots = errors.New("not a CLUSTER SLOTS reply")

// ParseSlots reads a CLUSTER SLOTS reply: an array of ranges, each
// [start, end, primary, replicas...], each node [host, port, id, ...]. An
// empty host means the node that answered (hostOf). A range outside the
// 16384 slots, or a malformed node, is an error; slots no range names
// stay Uncovered.
func ParseSlots(v resp.Value, hostOf string) (*Map, error) {
	if v.Kind != resp.KindArray {
		return nil, fmt.Errorf("%w: %s", ErrNotSlots, kindName(v))
	}
	m := &Map{}
	for i := range m.Slots {
		m.Slots[i] = Uncovered
	}
	byPrimary := map[string]uint16{}
	for _, r := range v.Elems {
		if r.Kind != resp.KindArray || len(r.Elems) < 3 {
			return nil, fmt.Errorf("%w: a range of %d elements", ErrNotSlots, len(r.Elems))
		}
		start, ok1 := r.Elems[0].Integer()
		end, ok2 := r.Elems[1].Integer()
		if !ok1 || !ok2 || start < 0 || end < start || end >= hashring.ClusterSlots {
			return nil, fmt.Errorf("%w: bad slot range", ErrNotSlots)
		}
		var nodes []Node
		for _, e := range r.Elems[2:] {
			n, err := parseNode(e, hostOf)
			if err != nil {
				return nil, err
			}
			nodes = append(nodes, n)
		}
		idx, seen := byPrimary[nodes[0].Addr]
		if !seen {
			if len(m.Shards) >= int(Uncovered) {
				return nil, fmt.Errorf("%w: too many shards", ErrNotSlots)
			}
			idx = uint16(len(m.Shards))
			byPrimary[nodes[0].Addr] = idx
			m.Shards = append(m.Shards, Shard{Primary: nodes[0], Replicas: nodes[1:]})
		}
		for s := start; s <= end; s++ {
			m.Slots[s] = idx
		}
	}
	return m, nil
}

// parseNode reads [host, port, id, ...].
func parseNode(e resp.Value, hostOf string) (Node, error) {
	if e.Kind != resp.KindArray || len(e.Elems) < 2 {
		return Node{}, fmt.Errorf("%w: a node of %d elements", ErrNotSlots, len(e.Elems))
	}
	host := string(e.Elems[0].Str)
	port, ok := e.Elems[1].Integer()
	if e.Elems[0].Kind != resp.KindBulk || !ok || port <= 0 || port > 65535 {
		return Node{}, fmt.Errorf("%w: a node without host and port", ErrNotSlots)
	}
	if host == "" || host == "?" {
		host = hostOf
	}
	n := Node{Addr: net.JoinHostPort(host, strconv.FormatInt(port, 10))}
	if len(e.Elems) > 2 && e.Elems[2].Kind == resp.KindBulk {
		n.ID = string(e.Elems[2].Str)
	}
	return n, nil
}

// Covered reports whether every slot has a shard.
func (m *Map) Covered() bool {
	return m.Uncovered() == 0
}

// Uncovered counts the slots no shard serves.
func (m *Map) Uncovered() int {
	n := 0
	for _, s := range m.Slots {
		if s == Uncovered {
			n++
		}
	}
	return n
}

// Owner is the shard serving key's slot, or nil when none does.
func (m *Map) Owner(key []byte) *Shard {
	s := m.Slots[hashring.ClusterSlot(key)]
	if s == Uncovered {
		return nil
	}
	return &m.Shards[s]
}

func kindName(v resp.Value) string {
	if v.IsError() {
		return "error " + resp.Clip(v.Str)
	}
	return "reply of type " + string(rune(v.Kind))
}
