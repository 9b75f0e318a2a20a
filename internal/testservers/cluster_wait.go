package testservers

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// clusterView is the slot map the nodes of a Cluster agreed on.
type clusterView struct {
	ranges    []slotRange
	role      map[string]string // node id -> "master" or "slave"
	primaryOf map[string]string // replica's id -> its primary's id
}

// slotRange is one entry of CLUSTER SLOTS: slots first..last, their
// primary, and its replicas (sorted, for comparing nodes' answers).
type slotRange struct {
	first, last int
	primary     string
	replicas    []string
}

// WaitHealthy waits up to d until every node that is up (not killed or
// paused) reports cluster_state:ok, they all return the same CLUSTER SLOTS
// covering all slots, that map lists every node that is up and no node
// that is down, and every replica is in sync with its primary. Its view of
// the map is what Primaries, ReplicasOf, Role, Slots and Owner answer from.
// After a Kill of a primary it thus waits for its failover.
func (c *Cluster) WaitHealthy(tb testing.TB, d time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(d)
	var err error
	for {
		var v clusterView
		if v, err = c.healthy(); err == nil {
			c.mu.Lock()
			c.view = v
			c.mu.Unlock()
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("cluster not healthy after %v: %v", d, err)
}

// healthy returns the agreed slot map, or why there is none yet.
func (c *Cluster) healthy() (clusterView, error) {
	up := c.Up()
	if len(up) == 0 {
		return clusterView{}, errors.New("no node is up")
	}
	var first []slotRange
	for i, n := range up {
		info, err := query(n.Addr, "", "CLUSTER", "INFO")
		if err != nil {
			return clusterView{}, fmt.Errorf("%s: CLUSTER INFO: %w", n.Addr, err)
		}
		if !strings.Contains(fmt.Sprint(info), "cluster_state:ok") {
			return clusterView{}, fmt.Errorf("%s: cluster_state not ok", n.Addr)
		}
		ranges, err := clusterSlots(n.Addr)
		if err != nil {
			return clusterView{}, err
		}
		if i == 0 {
			first = ranges
		} else if !slices.EqualFunc(first, ranges, sameRange) {
			return clusterView{}, fmt.Errorf("%s and %s differ in CLUSTER SLOTS", up[0].Addr, n.Addr)
		}
	}
	v, err := c.viewOf(first, up)
	if err != nil {
		return clusterView{}, err
	}
	for _, n := range up {
		if v.role[n.ID] != "slave" {
			continue
		}
		r, err := query(n.Addr, "", "INFO", "replication")
		info := fmt.Sprint(r)
		if err != nil || !strings.Contains(info, "master_link_status:up") ||
			!strings.Contains(info, "master_sync_in_progress:0") {
			return clusterView{}, fmt.Errorf("replica %s not in sync: %v %s", n.Addr, err, info)
		}
	}
	return v, nil
}

// viewOf checks that ranges cover every slot and name exactly the nodes
// that are up, and returns the view they give.
func (c *Cluster) viewOf(ranges []slotRange, up []*ClusterNode) (clusterView, error) {
	v := clusterView{ranges: ranges, role: map[string]string{}, primaryOf: map[string]string{}}
	covered := 0
	for _, r := range ranges {
		covered += r.last - r.first + 1
		v.role[r.primary] = "master"
		for _, id := range r.replicas {
			v.role[id] = "slave"
			v.primaryOf[id] = r.primary
		}
	}
	if covered != ClusterSlots {
		return clusterView{}, fmt.Errorf("%d of %d slots covered", covered, ClusterSlots)
	}
	for id := range v.role {
		n := c.Node(id)
		if n == nil {
			return clusterView{}, fmt.Errorf("slot map names unknown node %s", id)
		}
		if !slices.Contains(up, n) {
			return clusterView{}, fmt.Errorf("slot map still names %s, which is down", n.Addr)
		}
	}
	for _, n := range up {
		if v.role[n.ID] == "" {
			return clusterView{}, fmt.Errorf("slot map does not name %s yet", n.Addr)
		}
	}
	return v, nil
}

// clusterSlots returns CLUSTER SLOTS of addr.
func clusterSlots(addr string) ([]slotRange, error) {
	r, err := query(addr, "", "CLUSTER", "SLOTS")
	if err != nil {
		return nil, fmt.Errorf("%s: CLUSTER SLOTS: %w", addr, err)
	}
	return parseClusterSlots(r)
}

// parseClusterSlots reads a CLUSTER SLOTS reply as readReply returns it:
// entries of first slot, last slot, then the primary and each replica as
// ip, port, node id and (Redis 7) metadata. The result is in slot order,
// each range's replicas sorted.
func parseClusterSlots(r any) ([]slotRange, error) {
	entries, ok := r.([]any)
	if !ok {
		return nil, fmt.Errorf("CLUSTER SLOTS: unexpected reply %v", r)
	}
	var out []slotRange
	for _, e := range entries {
		f, ok := e.([]any)
		if !ok || len(f) < 3 {
			return nil, fmt.Errorf("CLUSTER SLOTS: unexpected entry %v", e)
		}
		first, ok1 := f[0].(int64)
		last, ok2 := f[1].(int64)
		var ids []string
		for _, nd := range f[2:] {
			d, ok := nd.([]any)
			if !ok || len(d) < 3 {
				return nil, fmt.Errorf("CLUSTER SLOTS: unexpected node %v", nd)
			}
			id, ok := d[2].(string)
			if !ok {
				return nil, fmt.Errorf("CLUSTER SLOTS: unexpected node id %v", d[2])
			}
			ids = append(ids, id)
		}
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("CLUSTER SLOTS: unexpected slots %v", e)
		}
		reps := ids[1:]
		slices.Sort(reps)
		out = append(out, slotRange{first: int(first), last: int(last), primary: ids[0], replicas: reps})
	}
	slices.SortFunc(out, func(a, b slotRange) int { return a.first - b.first })
	return out, nil
}

func sameRange(a, b slotRange) bool {
	return a.first == b.first && a.last == b.last && a.primary == b.primary && slices.Equal(a.replicas, b.replicas)
}
