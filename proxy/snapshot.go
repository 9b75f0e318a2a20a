package proxy

import (
	"fmt"
	"time"

	"github.com/shardproxy/shardproxy/hashring"
	"github.com/shardproxy/shardproxy/pools"
)

// Snapshot is the proxy's counters and state at one moment, as plain
// values: what the stats JSON shows and what package metrics exports. The
// hot path only adds to atomic counters; a snapshot reads them.
type Snapshot struct {
	Time   time.Time
	Config ConfigSnapshot
	Pools  []PoolSnapshot // the running pools, in file order
}

// ConfigSnapshot is the running configuration's digest and what became of
// the reloads.
type ConfigSnapshot struct {
	Digest         string // the running configuration file's digest
	Reloads        int64  // reloads applied
	ReloadFailures int64  // reloads refused (a bad file changes nothing)
	// LastReloadError is why the last refused reload was refused; it
	// stays after a later reload succeeds ("" when none was refused).
	LastReloadError string
	// LastReloadAt is when a reload was last tried (zero: never), and
	// LastReloadFailed whether that one was refused.
	LastReloadAt     time.Time
	LastReloadFailed bool
}

// PoolSnapshot is one pool's counters and state, in nutcracker's terms.
type PoolSnapshot struct {
	Name      string
	Redis     bool // RESP; else memcache
	Listening bool // its listener is open
	// FailFast says an ejected server stays in the ring and its keys
	// answer "server ejected" at once (eject_mode fail_fast, distribution
	// jump); else its keys move to the other servers.
	FailFast  bool
	AutoEject bool

	ClientEOF         int64 // clients that went away
	ClientErr         int64 // clients closed for an error
	ClientConnections int64 // clients now
	ClientAccepted    int64 // clients ever accepted, refused ones too
	ClientRefused     int64 // clients turned away at client_connections
	ClientOverflow    int64 // clients closed over client_output_limit
	ClientParked      int64 // idle clients now waiting without a goroutine
	// Subscribers are the clients subscribed now; Subscriptions their
	// channels, patterns and shard channels, all together.
	Subscribers, Subscriptions int64
	ClientBuffered             int64 // clients now holding a request buffer
	ServerEjects               int64 // ejections of its servers
	ForwardError               int64 // requests answered with an error instead of a server's reply
	Fragments                  int64 // fragments of multi-key requests split over servers
	Requests                   int64 // requests answered, local replies included

	// A migration (migrate_from): the old owners still to scan (0 when
	// complete or when none is configured), the keys moved (MIGRATEs
	// answered OK, on access and in the background) and the MIGRATEs
	// and SCANs that failed. MigrationStarted says the pool routes by
	// the new placement: false before migrate_from's start_at, and
	// without a migration.
	MigrationStarted bool
	MigrationPending int64
	KeysMigrated     int64
	MigrationErrors  int64
	// MigrationKeysPerSec is the keys moved per second over the last
	// ten seconds.
	MigrationKeysPerSec float64
	// With sentinels: Sentinel is set, and SentinelsUp of Sentinels
	// have the pool's subscription to +switch-master now.
	Sentinel               bool
	SentinelsUp, Sentinels int

	// Commands are the requests per command, their errors and their
	// latency, those of commands outside the proxy's command table as
	// "unknown"; commands never requested are left out.
	Commands []CommandCount
	Servers  []ServerSnapshot // in file order; a cluster pool's primaries, in its map's order
	// Cluster is a cluster pool's view of its cluster; nil for other
	// pools.
	Cluster *ClusterSnapshot
}

// ClusterSnapshot is what a cluster pool (redis_cluster) knows of its
// cluster and what its redirects cost.
type ClusterSnapshot struct {
	// Epoch is the current epoch of the slot map's node; Nodes the
	// nodes the pool knows (primaries, replicas, and those met in
	// redirects); SlotsCovered the slots with a primary in the map.
	Epoch        int64
	Nodes        int
	SlotsCovered int
	// MapFrom is the node the map came from, MapAge how long ago
	// (-1 before the first map).
	MapFrom string
	MapAge  time.Duration
	// Refreshes of the map, those where no node gave one
	// (RefreshFailures) and the views refused for an older epoch.
	Refreshes, RefreshFailures, StaleViews int64
	// LastRefreshError is why the last refresh failed ("" when it
	// took a map).
	LastRefreshError string
	// Redirects followed, by kind: MOVED, ASK, TRYAGAIN and CLUSTERDOWN
	// retried; UnsentRetries the requests sent again because their
	// connection failed before they were written; RetriesExhausted the
	// requests whose error went to the client once the retries ran out
	// (cluster_retry_timeout, or 16 redirects).
	Moved, Ask, TryAgain, ClusterDown int64
	UnsentRetries, RetriesExhausted   int64
	// ReplicaFallbacks counts the reads (replica_reads) a replica did
	// not serve, sent to the slot's primary: its call failed, or it
	// answered -LOADING, MOVED, CLUSTERDOWN and the like.
	ReplicaFallbacks int64
}

// ClusterMapMaxAge is how old a cluster pool's map may be and the pool
// still ready: several periods of refresh that all failed.
const ClusterMapMaxAge = 30 * time.Second

// ServerSnapshot is one server's counters and state.
type ServerSnapshot struct {
	Name    string // its identity: the name on its line, else host:port (host for port 11211)
	InRing  bool   // keys are placed on it now (an ejected server leaves the ring unless its pool fails fast)
	Ejected bool
	// Down says it is not known to serve: no connection to it or check
	// of it has succeeded yet, or the last one failed (a dial, a check, a
	// connection that broke). The proxy checks each server at start and
	// each server down every second.
	Down bool
	// Addr is where it is dialled now: with sentinels, its master's
	// primary; Failovers counts its moves to another primary.
	Addr      string
	Failovers int64
	// Replicas are where its reads go with replica_reads (those up);
	// none when to Addr.
	Replicas []string

	// PushesDropped counts the RESP3 pushes the server sent where no
	// request waited: dropped, never taken for a reply.
	PushesDropped int64
	// SessionsOpen and SessionsInUse are the session connections (a
	// transaction's, a blocking command's) open and in use now;
	// SessionRefusals counts the sessions refused over server_sessions.
	SessionsOpen, SessionsInUse, SessionRefusals int64

	ServerEOF         int64 // connections the server closed
	ServerErr         int64 // connection errors, failed connects included
	ServerTimedout    int64 // connections closed for a reply's timeout
	ServerConnections int64 // connections now
	Connects          int64 // connections ever made
	ServerEjectedAt   int64 // last ejection, unix microseconds; 0 when never
	Requests          int64 // requests queued for it
	RequestBytes      int64
	Responses         int64 // replies read from it
	ResponseBytes     int64
	InQueue           int // requests waiting to be written
	InQueueBytes      int
	OutQueue          int // requests written, waiting for their replies
	OutQueueBytes     int
	// Latency is the time from each request's enqueueing to its reply.
	Latency Latency
}

// Latency is a histogram of request-to-reply times with fixed buckets.
type Latency struct {
	Bounds  []time.Duration // upper bounds of the buckets but the last, ascending
	Buckets []uint64        // replies per bucket (not cumulative): len(Bounds)+1, the last beyond every bound
	Sum     time.Duration
}

// Count is the number of replies in the histogram.
func (l Latency) Count() uint64 {
	var n uint64
	for _, b := range l.Buckets {
		n += b
	}
	return n
}

// Snapshot reads every counter of the proxy and its running pools (not
// those a reload removed that are still draining).
func (px *Proxy) Snapshot() Snapshot {
	s := Snapshot{Time: time.Now()}
	px.reload.mu.Lock()
	s.Config = ConfigSnapshot{
		Digest:           px.reload.digest,
		Reloads:          px.reload.reloads,
		ReloadFailures:   px.reload.failures,
		LastReloadError:  px.reload.lastErr,
		LastReloadAt:     px.reload.lastAt,
		LastReloadFailed: px.reload.lastFailed,
	}
	px.reload.mu.Unlock()
	bounds := pools.LatencyBounds()
	for _, p := range px.poolList() {
		s.Pools = append(s.Pools, p.snapshot(bounds))
	}
	return s
}

// snapshot reads the pool's counters and its servers'.
func (p *pool) snapshot(bounds []time.Duration) PoolSnapshot {
	subs, subscriptions := p.subscriptions()
	p.mu.Lock()
	listening := p.ln != nil && !p.closed
	p.mu.Unlock()
	rt := p.routing()
	st := &p.stats
	ps := PoolSnapshot{
		Name:                rt.cfg.Name,
		Redis:               rt.cfg.Redis,
		Listening:           listening,
		FailFast:            rt.failFast(),
		AutoEject:           rt.cfg.AutoEjectHosts,
		ClientEOF:           st.clientEOF.Load(),
		ClientErr:           st.clientErr.Load(),
		ClientConnections:   st.clientConnections.Load(),
		ClientAccepted:      st.clientAccepted.Load(),
		ClientRefused:       st.clientRefused.Load(),
		ClientOverflow:      st.clientOverflow.Load(),
		ClientParked:        st.clientParked.Load(),
		Subscribers:         subs,
		Subscriptions:       subscriptions,
		ClientBuffered:      st.clientBuffered.Load(),
		ServerEjects:        st.serverEjects.Load(),
		ForwardError:        st.forwardError.Load(),
		Fragments:           st.fragments.Load(),
		Requests:            st.requests.Load(),
		KeysMigrated:        st.keysMigrated.Load(),
		MigrationErrors:     st.migrationErrors.Load(),
		MigrationKeysPerSec: st.migrateRate.perSecond(time.Now()),
	}
	if rt.cfg.Sentinel.Enabled() {
		ps.Sentinel = true
		ps.SentinelsUp, ps.Sentinels = p.follower.SentinelsUp()
	}
	if rt.mig != nil {
		ps.MigrationPending = rt.mig.Pending()
		ps.MigrationStarted = rt.active() == rt
	}
	names := memcacheCommandNames
	if rt.cfg.Redis {
		names = redisCommandNames
	}
	ps.Commands = st.commandCounts(names, bounds)
	if p.cluster != nil {
		ps.Cluster = p.cluster.snapshot(rt)
	}
	inRing := make(map[*pools.Server]bool, len(rt.ring))
	for _, s := range rt.ring {
		inRing[s] = true
	}
	for i, s := range rt.servers {
		ss := serverSnapshot(s, inRing[s], bounds)
		for _, r := range p.follower.Replicas(s.Name()) {
			if rt.replicaReads && r.Up() {
				ss.Replicas = append(ss.Replicas, r.Addr())
			}
		}
		ss.Replicas = rt.clusterReplicaAddrs(ss.Replicas, i)
		ps.Servers = append(ps.Servers, ss)
	}
	return ps
}

func serverSnapshot(s *pools.Server, inRing bool, bounds []time.Duration) ServerSnapshot {
	st := &s.Stats
	q := s.Queues()
	lat := st.Latency.Snapshot()
	return ServerSnapshot{
		Name:              s.Name(),
		InRing:            inRing,
		Ejected:           s.Ejected(),
		Down:              !s.Up(),
		Addr:              s.Addr(),
		Failovers:         st.Failovers.Load(),
		PushesDropped:     st.Pushes.Load(),
		SessionsOpen:      st.SessionsOpen.Load(),
		SessionsInUse:     int64(s.SessionsInUse()),
		SessionRefusals:   st.SessionRefusals.Load(),
		ServerEOF:         st.ServerEOF.Load(),
		ServerErr:         st.ServerErr.Load(),
		ServerTimedout:    st.ServerTimedout.Load(),
		ServerConnections: st.ServerConnections.Load(),
		Connects:          st.Connects.Load(),
		ServerEjectedAt:   st.ServerEjectedAt.Load(),
		Requests:          st.Requests.Load(),
		RequestBytes:      st.RequestBytes.Load(),
		Responses:         st.Responses.Load(),
		ResponseBytes:     st.ResponseBytes.Load(),
		InQueue:           q.In,
		InQueueBytes:      q.InBytes,
		OutQueue:          q.Out,
		OutQueueBytes:     q.OutBytes,
		Latency:           Latency{Bounds: bounds, Buckets: lat.Buckets[:], Sum: lat.Sum},
	}
}

// Reachable says keys placed on the server are served: it is in the ring,
// not ejected, and not down (a connection to it or a check of it
// succeeded last).
func (s *ServerSnapshot) Reachable() bool { return s.InRing && !s.Ejected && !s.Down }

// Ready reports whether the pool serves, and if not, why. A pool is ready
// when it listens and either
//   - a server of its ring is reachable (see ServerSnapshot.Reachable):
//     the keys of the others fail or move as the pool's policy says,
//     and another proxy would do no better; or
//   - its keys fail fast (FailFast) and every server is ejected: the
//     pool answers each request at once, as its policy chose, and comes
//     back by itself when a server passes its health check.
//
// A pool whose servers are down but not (yet) ejected, or whose ejected
// servers left the ring (eject_mode rehash) with none reachable left, is
// not ready.
func (ps *PoolSnapshot) Ready() (bool, string) {
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

// subscriptions counts the pool's subscribed clients and their
// subscriptions.
func (p *pool) subscriptions() (clients, subscriptions int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for cl := range p.clients {
		sb := cl.sub.Load()
		if sb == nil {
			continue
		}
		sb.mu.Lock()
		clients++
		subscriptions += int64(len(sb.channels) + len(sb.patterns) + len(sb.shards))
		sb.mu.Unlock()
	}
	return clients, subscriptions
}
