package proxy

import (
	"time"

	"github.com/shardproxy/shardproxy/pools"
	"github.com/shardproxy/shardproxy/stats"
)

// Snapshot reads every counter of the proxy and its running pools (not
// those a reload removed that are still draining).
func (px *Proxy) Snapshot() stats.Snapshot {
	s := stats.Snapshot{Time: time.Now(), Version: Version}
	px.reload.mu.Lock()
	s.Config = stats.Config{
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
func (p *pool) snapshot(bounds []time.Duration) stats.Pool {
	subs, subscriptions := p.subscriptions()
	p.mu.Lock()
	listening := p.ln != nil && !p.closed
	p.mu.Unlock()
	rt := p.routing()
	st := &p.stats
	ps := stats.Pool{
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

func serverSnapshot(s *pools.Server, inRing bool, bounds []time.Duration) stats.Server {
	st := &s.Stats
	q := s.Queues()
	lat := st.Latency.Snapshot()
	return stats.Server{
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
		Latency:           stats.Latency{Bounds: bounds, Buckets: lat.Buckets[:], Sum: lat.Sum},
	}
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
