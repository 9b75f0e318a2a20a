package stats

import (
	"fmt"
	"time"

	"github.com/shardproxy/shardproxy/hashring"
)

// ClusterMapMaxAge is how old a cluster pool's map may be and the pool
// still ready: several periods of refresh that all failed.
const ClusterMapMaxAge = 30 * time.Second

// Reachable says keys placed on the server are served: it is in the ring,
// not ejected, and not down (a connection to it or a check of it
// succeeded last).
func (s *Server) Reachable() bool { return s.InRing && !s.Ejected && !s.Down }

// Ready reports whether the pool serves, and if not, why. A pool is ready
// when it listens and either
//   - a server of its ring is reachable (see Server.Reachable):
//     the keys of the others fail or move as the pool's policy says,
//     and another proxy would do no better; or
//   - its keys fail fast (FailFast) and every server is ejected: the
//     pool answers each request at once, as its policy chose, and comes
//     back by itself when a server passes its health check.
//
// A pool whose servers are down but not (yet) ejected, or whose ejected
// servers left the ring (eject_mode rehash) with none reachable left, is
// not ready.
func (ps *Pool) Ready() (bool, string) {
	if !ps.Listening {
		return false, "not listening"
	}
	if c := ps.Cluster; c != nil {
		switch {
		case c.MapAge < 0 && c.LastRefreshError == "":
			return false, "no slot map yet: the first refresh has not ended"
		case c.MapAge < 0:
			return false, "no slot map yet: " + c.LastRefreshError
		case c.SlotsCovered < hashring.ClusterSlots:
			return false, fmt.Sprintf("%d of %d slots have no node", hashring.ClusterSlots-c.SlotsCovered, hashring.ClusterSlots)
		case c.MapAge > ClusterMapMaxAge:
			return false, fmt.Sprintf("slot map %v old: %s", c.MapAge.Round(time.Second), c.LastRefreshError)
		}
		return true, ""
	}
	ejected, down := 0, 0
	for i := range ps.Servers {
		s := &ps.Servers[i]
		if s.Reachable() {
			return true, ""
		}
		if s.Ejected {
			ejected++
		} else if s.Down {
			down++
		}
	}
	if ps.FailFast && ejected == len(ps.Servers) {
		return true, ""
	}
	return false, fmt.Sprintf("no reachable server among %d (%d ejected, %d down)", len(ps.Servers), ejected, down)
}
