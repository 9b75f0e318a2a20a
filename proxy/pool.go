package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/failover"
	"github.com/shardproxy/shardproxy/internal/sockio"
	"github.com/shardproxy/shardproxy/migration"
	"github.com/shardproxy/shardproxy/pools"
)

// pool is one configured pool: its listener, its routing (servers,
// placement, limits) and its clients.
//
// Lock order: moverMu before mu (setMover reads closed); mu before a
// client's subscriber's mu (subscriptions counts them); ringMu is taken
// alone. The follower's and the pools.Server's locks are never taken
// under any of them but moverMu (a move's servers).
type pool struct {
	// cfg is the pool's configuration for its listener: its name, listen
	// address and client TLS (a reload that changes them replaces it
	// under mu). What routes requests and bounds clients is read from
	// the routing value, never from cfg.
	cfg   *config.Pool
	proto clientProtocol
	// servers speaks the pool's protocol to its servers.
	servers serverProtocol
	log     *slog.Logger
	rt      atomic.Pointer[routing]
	ln      *listener   // nil once a reload handed its socket to another pool
	tls     *tls.Config // client-side TLS; nil for plain TCP
	stats   poolStats
	parks   atomic.Pointer[[]*parker] // nil while idle clients keep their goroutines (parkers)
	hangups sockio.Hangups            // clients blocked in a command, watched for hanging up

	nextID  atomic.Uint64
	mu      sync.Mutex
	clients map[*client]struct{}
	closed  bool
	// draining says the pool is leaving (a reload removed it): each client
	// closes once its requests in flight are answered.
	draining atomic.Bool
	done     chan struct{} // closed by close
	wg       sync.WaitGroup
	ringMu   sync.Mutex
	started  time.Time
	// mover moves the keys of the pool's migrations (migrate_from), on
	// access and in the background (migration.go).
	mover *migration.Mover
	// follower follows the pool's shards under Sentinel, and keeps their
	// replicas with replica_reads (failover.go).
	follower *failover.Follower
	// cluster is a cluster pool's cluster.Keeper of its nodes and slot
	// map, with the pool's side of its seam (cluster.go); nil in other
	// pools.
	cluster *clusterState
}

// poolStats are a pool's counters, in nutcracker's terms.
type poolStats struct {
	clientEOF, clientErr, clientConnections, clientRefused atomic.Int64
	clientParked                                           atomic.Int64
	clientBuffered                                         atomic.Int64 // clients holding a batch now
	clientAccepted                                         atomic.Int64 // ever, refused ones too
	clientOverflow                                         atomic.Int64 // closed over client_output_limit
	requests, fragments, forwardError, serverEjects        atomic.Int64
	// keysMigrated counts the keys of MIGRATEs answered OK, on access
	// and by the mover; migrationErrors the MIGRATEs and SCANs that
	// failed.
	keysMigrated, migrationErrors atomic.Int64
	// migrateRate is keysMigrated's rate (keys_migrated_per_sec).
	migrateRate rateMeter
	// commands counts requests per command, outcomes what became of
	// them, by command id (see commandcount.go).
	commands [commandSlots]atomic.Int64
	outcomes []commandOutcome
}

func newPool(cfg *config.Pool, log *slog.Logger) (*pool, error) {
	p := &pool{
		cfg:     cfg,
		log:     log.With("pool", cfg.Name),
		clients: map[*client]struct{}{},
		started: time.Now(),
		done:    make(chan struct{}),
	}
	p.stats.outcomes = make([]commandOutcome, commandIDs)
	p.follower = failover.New(shards{p}, p.log)
	p.mover = migration.NewMover(keyspace{p}, p.log)
	p.proto, p.servers = newProto(p)
	var err error
	if p.tls, err = cfg.ClientTLSConfig(); err != nil {
		return nil, err
	}
	roots, err := cfg.ServerRoots()
	if err != nil {
		return nil, err
	}
	if cfg.ServerTLS.Insecure {
		p.log.Warn("server_tls_insecure: server certificates are not verified")
	}
	if cfg.RedisCluster {
		p.cluster = newClusterState(p, cfg, roots)
		mig, err := p.newClusterMigration(cfg, roots) // nil without migrate_from
		if err != nil {
			return nil, err
		}
		p.rt.Store(newClusterRouting(cfg, nil, nil, nil).migrating(mig))
		return p, nil
	}
	lines := serverLines(cfg)
	servers := make([]*pools.Server, len(lines))
	for i, s := range lines {
		servers[i] = p.newServer(cfg, s, roots)
	}
	rt, err := newRouting(cfg, servers)
	if err != nil {
		return nil, err
	}
	p.rt.Store(rt)
	return p, nil
}

// routing returns the pool's current routing value.
func (p *pool) routing() *routing { return p.rt.Load() }

// newProto makes the pool's protocol, towards clients and servers.
func newProto(p *pool) (clientProtocol, serverProtocol) {
	if p.cfg.Redis {
		return newRedisProto(p), redisServers{}
	}
	return newMemcacheProto(p), memcacheServers{}
}

// newServer makes the pools.Server of one server line of cfg.
func (p *pool) newServer(cfg *config.Pool, s config.Server, roots *x509.CertPool) *pools.Server {
	var srv *pools.Server
	opt := p.serverOptions(cfg, s, roots)
	opt.OnStateChange = func() {
		if srv.Ejected() {
			p.stats.serverEjects.Add(1)
		}
		if err := p.rebuild(); err != nil {
			p.log.Error("rebuilding the ring", "err", err)
		}
	}
	srv = pools.NewServer(opt)
	return srv
}

// serverOptions are the options of the pools.Server of one server line of
// cfg: with sentinels, those of its master's primary (failover.Follower.PrimaryOptions).
func (p *pool) serverOptions(cfg *config.Pool, s config.Server, roots *x509.CertPool) pools.Options {
	opt := p.baseServerOptions(cfg, s, roots)
	if cfg.Sentinel.Enabled() {
		p.follower.PrimaryOptions(&opt, s.Ident)
	}
	return opt
}

// baseServerOptions are the options of a server of line s of cfg as any
// server of the pool has them: its replicas' too.
func (p *pool) baseServerOptions(cfg *config.Pool, s config.Server, roots *x509.CertPool) pools.Options {
	return pools.Options{
		Network:      s.Network,
		Addr:         p.primaryAddr(cfg, s),
		Name:         s.Ident,
		Connections:  cfg.ServerConnections,
		SessionLimit: cfg.ServerSessions,
		Timeout:      cfg.Timeout,
		KeepAlive:    cfg.TCPKeepalive,
		TLS:          cfg.ServerTLSConfig(s, roots),
		Handshake:    p.servers.handshake(cfg),
		Hello3:       p.servers.hello3(),
		IsPush:       p.servers.isPush,
		Ping:         p.servers.ping(),
		Frame:        p.servers.framer(),
		FailFast:     failFast(cfg),
		Need:         p.servers.replyNeed,
		IsError:      p.servers.isError,
		AutoEject:    cfg.AutoEjectHosts,
		FailureLimit: cfg.ServerFailureLimit,
		RetryTimeout: cfg.ServerRetryTimeout,
		Logger:       p.log,
	}
}

// rebuild swaps in the routing rebuilt from the current one for the
// servers' ejection states (a server was ejected or came back).
func (p *pool) rebuild() error {
	p.ringMu.Lock()
	defer p.ringMu.Unlock()
	cur := p.routing()
	if cur == nil {
		return nil // a server changed state while the pool was being made
	}
	next, err := cur.rebuilt()
	if err != nil {
		return err
	}
	p.rt.Store(next)
	return nil
}

// preconnect dials every server connection (preconnect: true). Failures
// are logged, not fatal, as in nutcracker.
func (p *pool) preconnect() {
	for _, s := range p.routing().servers {
		if err := s.Preconnect(); err != nil {
			p.log.Warn("preconnect", "server", s.Name(), "err", err)
		}
	}
}

// close stops accepting, closes every client and server connection and
// waits for their goroutines.
func (p *pool) close() {
	// Parked clients first: a client an event loop serves now then finds
	// its parker closed and ends in a goroutine (resume).
	for _, pk := range p.parkers() {
		pk.close()
	}
	p.mu.Lock()
	if !p.closed {
		close(p.done)
	}
	p.closed = true
	if p.ln != nil {
		p.ln.Close()
	}
	for cl := range p.clients {
		cl.closeConn()
	}
	p.mu.Unlock()
	p.hangups.Close()
	p.mover.Stop()
	p.follower.Close()
	for _, s := range p.routing().servers {
		s.Close()
	}
	if p.cluster != nil {
		p.cluster.keeper.Close()
	}
	p.wg.Wait()
}

// ensureParker starts the pool's parker when its clients should park
// (client_park_after) and it has none yet.
func (p *pool) ensureParker() {
	if p.parks.Load() != nil || p.routing().lim.parkAfter <= 0 {
		return
	}
	parks := make([]*parker, 0, runtime.GOMAXPROCS(0))
	for range cap(parks) {
		pk := newParker(p)
		if pk == nil {
			break
		}
		parks = append(parks, pk)
	}
	if len(parks) < cap(parks) {
		for _, pk := range parks {
			pk.set.Close()
		}
		return
	}
	for _, pk := range parks {
		p.wg.Add(1)
		go pk.run()
	}
	p.parks.Store(&parks)
}

// parkers returns the pool's parkers, none while idle clients keep their
// goroutines.
func (p *pool) parkers() []*parker {
	if pks := p.parks.Load(); pks != nil {
		return *pks
	}
	return nil
}

// parkerOf is the parker, and event loop, of cl; the pool has parkers.
func (p *pool) parkerOf(cl *client) *parker {
	pks := *p.parks.Load()
	return pks[cl.id%uint64(len(pks))]
}
