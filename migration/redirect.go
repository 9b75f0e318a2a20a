package migration

import (
	"errors"
	"fmt"
	"time"

	"github.com/shardproxy/shardproxy/config"
)

// Into a cluster pool (redis_cluster with migrate_from), a key's new
// owner is the primary of its slot by the pool's slot map, which can be
// behind the cluster: a slot resharded or failed over meanwhile. The
// target of a MIGRATE then refuses the keys of that slot (MOVED, ASK,
// TRYAGAIN, CLUSTERDOWN in MIGRATE's error); MIGRATE has moved the others
// and deleted them from the source. The pool follows the refusal
// (Pool.Redirected: a MOVED patches its map at once, the others refresh
// it), and the keys left are placed again and moved again, within the
// pool's cluster_retry_timeout (moveFollowing). The client's own request
// is sent after its keys moved, and the pool follows the cluster's
// redirects for it as for any request.

// errRedirect is a MIGRATE whose target, a cluster node, refused keys of
// a slot it does not serve now: the keys left are placed again and moved
// again after pause.
type errRedirect struct {
	msg   string
	pause time.Duration
}

func (e *errRedirect) Error() string { return e.msg }

// redirectMinPause is the least pause before a move is tried again after
// its second refusal, so that a map slow to follow is not asked in a
// tight loop.
const redirectMinPause = 10 * time.Millisecond

// moveFollowing moves g's keys from their old owner to their owner, as
// move does; when the owner refuses some because the cluster moved their
// slot (errRedirect), the keys are placed again by the pool's routing now
// and moved again, until they are moved or the pool's
// cluster_retry_timeout is spent. ended is called once for each part of
// g's keys whose move ended, with its error (nil: moved).
func (m *State) moveFollowing(mv *Mover, mc *moveConns, g *moveGroup, lock bool, ended func(part *moveGroup, err error)) {
	queue := []*moveGroup{g}
	var deadline time.Time
	for tries := 0; len(queue) > 0; tries++ {
		g := queue[0]
		queue = queue[1:]
		err := m.move(mv, mc, g.from, g.to, g.keys, lock)
		var rd *errRedirect
		if !errors.As(err, &rd) {
			ended(g, err)
			continue
		}
		budget := m.cfg.ClusterRetryTimeout
		if budget <= 0 {
			budget = config.DefaultClusterRetryTimeout
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(budget)
		}
		pause := rd.pause
		if tries > 0 {
			pause = max(pause, redirectMinPause)
		}
		if time.Now().Add(pause).After(deadline) {
			mv.pool.Failed()
			ended(g, fmt.Errorf("%w (the slot did not settle within cluster_retry_timeout, %v)", err, budget))
			continue
		}
		time.Sleep(pause)
		place := mv.pool.Placement(m)
		if place == nil {
			ended(g, err) // a reload ended the migration: the next one moves them
			continue
		}
		var next []*moveGroup
		var lost [][]byte
		for _, k := range g.keys {
			if _, now := place.Owners(k); now != nil {
				ng := findGroup(&next, g.from, now)
				ng.keys = append(ng.keys, k)
			} else {
				lost = append(lost, k)
			}
		}
		if len(lost) > 0 {
			mv.pool.Failed()
			ended(&moveGroup{from: g.from, to: g.to, keys: lost}, fmt.Errorf("%w; no node serves the slot now", err))
		}
		queue = append(queue, next...)
	}
}
