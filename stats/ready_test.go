package stats

import (
	"testing"
	"time"
)

// TestPoolReady checks the readiness rule on pools in every state.
func TestPoolReady(t *testing.T) {
	up := Server{Name: "up", InRing: true}
	down := Server{Name: "down", InRing: true, Down: true}
	ejectedOut := Server{Name: "ejected", Ejected: true, Down: true}  // rehash: out of the ring
	ejectedIn := Server{Name: "ejected", InRing: true, Ejected: true} // fail_fast: stays
	for _, c := range []struct {
		name  string
		pool  Pool
		ready bool
		why   string
	}{
		{"one server up", Pool{Listening: true, Servers: []Server{up}}, true, ""},
		{"not listening", Pool{Servers: []Server{up}}, false, "not listening"},
		{"one of two down", Pool{Listening: true, Servers: []Server{down, up}}, true, ""},
		{"all down, not ejected", Pool{Listening: true, Servers: []Server{down, down}}, false,
			"no reachable server among 2 (0 ejected, 2 down)"},
		{"rehash, all ejected", Pool{Listening: true, AutoEject: true, Servers: []Server{ejectedOut}}, false,
			"no reachable server among 1 (1 ejected, 0 down)"},
		{"rehash, one ejected, one up", Pool{Listening: true, AutoEject: true, Servers: []Server{ejectedOut, up}}, true, ""},
		{"fail_fast, all ejected", Pool{Listening: true, AutoEject: true, FailFast: true, Servers: []Server{ejectedIn, ejectedIn}}, true, ""},
		{"fail_fast, one ejected, one down", Pool{Listening: true, AutoEject: true, FailFast: true, Servers: []Server{ejectedIn, down}}, false,
			"no reachable server among 2 (1 ejected, 1 down)"},
		{"fail_fast, not listening", Pool{AutoEject: true, FailFast: true, Servers: []Server{ejectedIn}}, false, "not listening"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ready, why := c.pool.Ready()
			if ready != c.ready || why != c.why {
				t.Errorf("Ready() = %v, %q; want %v, %q", ready, why, c.ready, c.why)
			}
		})
	}
}

// TestClusterPoolReady checks the readiness rule of a cluster pool: a
// full slot map that is not too old.
func TestClusterPoolReady(t *testing.T) {
	for _, c := range []struct {
		name    string
		cluster Cluster
		ready   bool
		why     string
	}{
		{"full and fresh", Cluster{SlotsCovered: 16384, MapAge: time.Second}, true, ""},
		{"first refresh running", Cluster{MapAge: -1}, false, "no slot map yet: the first refresh has not ended"},
		{"first refresh failed", Cluster{MapAge: -1, LastRefreshError: "no node answered"}, false,
			"no slot map yet: no node answered"},
		{"slots missing", Cluster{SlotsCovered: 16000, MapAge: time.Second}, false, "384 of 16384 slots have no node"},
		{"too old", Cluster{SlotsCovered: 16384, MapAge: 45 * time.Second, LastRefreshError: "timeout"}, false,
			"slot map 45s old: timeout"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := Pool{Listening: true, Cluster: &c.cluster}
			ready, why := p.Ready()
			if ready != c.ready || why != c.why {
				t.Errorf("Ready() = %v, %q; want %v, %q", ready, why, c.ready, c.why)
			}
		})
	}
}
