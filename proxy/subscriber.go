package proxy

import (
	"slices"
	"sync"

	"github.com/shardproxy/shardproxy/commands"
	"github.com/shardproxy/shardproxy/pools"
)

// subscriber is a subscribed client's subscriptions.
type subscriber struct {
	cl *client
	// mu guards everything below and every write to the client while it
	// is subscribed (client.send takes it); no other lock is taken
	// under it but the client's output lock.
	mu       sync.Mutex
	conns    map[*pools.Server]*pools.SessionConn
	channels map[string]*pools.Server
	patterns map[string]*pools.Server // nil: every server; in a cluster pool, the one it was made on
	shards   map[string]*pools.Server
	// In a cluster pool: the shard channels a SUNSUBSCRIBE was sent for,
	// and those a node dropped (its slot moved away) that are being
	// subscribed again on the slot's new owner (cluster_pubsub.go).
	leaving map[string]bool
	moving  map[string]*shardMove
	holding bool   // the client's goroutine is confirming: messages wait in held
	held    []byte // messages come while holding
	closing bool   // endSubscriptions is closing the connections
	failed  bool   // a reader ended the client: messages are dropped
	resp2   bool   // the client speaks RESP2 (it may have said HELLO 2 since it subscribed)
	// confirms carries the servers' confirmations (and errors) to the
	// client's goroutine, which waits for them.
	confirms chan confirm
	done     chan struct{} // closed by endSubscriptions: readers stop handing over
	lost     chan struct{} // closed by the reader that failed first
	wg       sync.WaitGroup
}

func newSubscriber(cl *client) *subscriber {
	return &subscriber{cl: cl, resp2: !cl.resp3, conns: map[*pools.Server]*pools.SessionConn{}, channels: map[string]*pools.Server{},
		patterns: map[string]*pools.Server{}, shards: map[string]*pools.Server{}, confirms: make(chan confirm, 4),
		leaving: map[string]bool{}, moving: map[string]*shardMove{},
		done: make(chan struct{}), lost: make(chan struct{})}
}

// count is Redis's subscription count of the kind: channels and patterns
// together, shard channels apart.
func (sb *subscriber) count(kind uint8) int {
	if kind&commands.SubShard != 0 {
		return len(sb.shards)
	}
	return len(sb.channels) + len(sb.patterns)
}

// names lists the subscriptions of a kind, sorted. Under mu.
func (sb *subscriber) names(kind uint8) []string {
	var out []string
	switch kind {
	case commands.SubChannel:
		for n := range sb.channels {
			out = append(out, n)
		}
	case commands.SubPattern:
		for n := range sb.patterns {
			out = append(out, n)
		}
	default:
		for n := range sb.shards {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// has reports whether the client is subscribed to name. Under mu.
func (sb *subscriber) has(kind uint8, name string) bool {
	switch kind {
	case commands.SubChannel:
		return sb.channels[name] != nil
	case commands.SubPattern:
		_, ok := sb.patterns[name]
		return ok
	default:
		return sb.shards[name] != nil
	}
}

// servers are the servers a subscription to name concerns: its channel's
// (the one it was made on, once made), or every server for a pattern. In
// a cluster pool, which sends every PUBLISH to every node, a pattern is
// subscribed on one node, its name's slot's owner, as a channel is, so
// that each message comes once. Under mu.
func (sb *subscriber) servers(kind uint8, name string, rt *routing) []*pools.Server {
	switch {
	case kind == commands.SubPattern && rt.slots == nil:
		return rt.servers
	case kind == commands.SubPattern && sb.patterns[name] != nil:
		return []*pools.Server{sb.patterns[name]}
	case kind == commands.SubChannel && sb.channels[name] != nil:
		return []*pools.Server{sb.channels[name]}
	case kind == commands.SubShard && sb.shards[name] != nil:
		return []*pools.Server{sb.shards[name]}
	}
	i := rt.locate([]byte(name))
	if i < 0 {
		return nil
	}
	return []*pools.Server{rt.ring[i]}
}

// add and remove record a subscription made or ended. Under mu.
func (sb *subscriber) add(kind uint8, name string, rt *routing) {
	switch kind {
	case commands.SubPattern:
		sb.patterns[name] = nil
		if rt.slots != nil {
			if srvs := sb.servers(kind, name, rt); len(srvs) == 1 {
				sb.patterns[name] = srvs[0]
			}
		}
	case commands.SubChannel, commands.SubShard:
		srvs := sb.servers(kind, name, rt)
		if len(srvs) == 0 {
			return
		}
		if kind == commands.SubChannel {
			sb.channels[name] = srvs[0]
		} else {
			sb.shards[name] = srvs[0]
		}
	}
}

func (sb *subscriber) remove(kind uint8, name string) {
	switch kind {
	case commands.SubPattern:
		delete(sb.patterns, name)
	case commands.SubChannel:
		delete(sb.channels, name)
	default:
		delete(sb.shards, name)
	}
}
