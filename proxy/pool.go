package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardproxy/shardproxy/codec/memcache"
	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/hashring"
	"github.com/shardproxy/shardproxy/pools"
)

// ring is a pool's placement at one moment: immutable, swapped whole when
// a server is ejected or comes back.
type ring struct {
	place   *hashring.Placement
	servers []*pools.Server // placement index -> server
}

// pool is one configured pool: its listener, servers, ring and clients.
type pool struct {
	cfg     *config.Pool
	proto   protocol
	log     *slog.Logger
	servers []*pools.Server
	ring    atomic.Pointer[ring]
	ln      net.Listener
	tls     *tls.Config // client-side TLS; nil for plain TCP
	stats   poolStats

	maxRequest   int
	idleTimeout  time.Duration
	timeout      time.Duration // the servers' reply timeout
	parkAfter    time.Duration
	park         *parker // nil when idle clients keep their goroutines
	writeTimeout time.Duration
	outputLimit  int // client_output_limit; 0 = unlimited

	nextID  atomic.Uint64
	mu      sync.Mutex
	clients map[*client]struct{}
	closed  bool
	wg      sync.WaitGroup
	ringMu  sync.Mutex
	started time.Time
}

// poolStats are a pool's counters, in nutcracker's terms.
type poolStats struct {
	clientEOF, clientErr, clientConnections, clientRefused atomic.Int64
	clientParked                                           atomic.Int64
	clientBuffered                                         atomic.Int64 // clients holding a batch now
	clientAccepted                                         atomic.Int64 // ever, refused ones too
	clientOverflow                                         atomic.Int64 // closed over client_output_limit
	requests, fragments, forwardError, serverEjects        atomic.Int64
}

func newPool(cfg *config.Pool, log *slog.Logger) (*pool, error) {
	p := &pool{
		cfg:          cfg,
		log:          log.With("pool", cfg.Name),
		clients:      map[*client]struct{}{},
		maxRequest:   cfg.MaxRequestSize,
		idleTimeout:  cfg.ClientIdleTimeout,
		timeout:      cfg.Timeout,
		parkAfter:    cfg.ClientParkAfter,
		writeTimeout: cfg.ClientWriteTimeout,
		outputLimit:  cfg.ClientOutputLimit,
		started:      time.Now(),
	}
	if p.maxRequest <= 0 {
		p.maxRequest = config.DefaultMaxRequestSize
	}
	p.proto = newProto(p)
	var err error
	if p.tls, err = clientTLS(cfg); err != nil {
		return nil, err
	}
	roots, err := serverRoots(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.ServerTLS.Insecure {
		p.log.Warn("server_tls_insecure: server certificates are not verified")
	}
	for _, s := range cfg.Servers {
		p.servers = append(p.servers, p.newServer(s, roots))
	}
	if err := p.rebuild(); err != nil {
		return nil, err
	}
	return p, nil
}

// newProto makes the pool's protocol with the pool's request limits.
func newProto(p *pool) protocol {
	cfg := p.cfg
	if cfg.Redis {
		r := newRedisProto(p)
		r.lim = resp.Limits{MaxArgs: cfg.MaxArgs, MaxBulk: p.maxRequest}
		return r
	}
	m := newMemcacheProto(p)
	m.lim.MaxValue = min(p.maxRequest, maxMemcacheValue)
	if cfg.MaxArgs > 0 {
		m.lim.MaxKeys = min(cfg.MaxArgs, memcache.DefaultMaxKeys)
	}
	return m
}

// newServer makes the pools.Server of one server line.
func (p *pool) newServer(s config.Server, roots *x509.CertPool) *pools.Server {
	cfg := p.cfg
	var srv *pools.Server
	srv = pools.NewServer(pools.Options{
		Network:      s.Network,
		Addr:         s.Addr,
		Name:         s.Ident,
		Connections:  cfg.ServerConnections,
		Timeout:      cfg.Timeout,
		KeepAlive:    cfg.TCPKeepalive,
		TLS:          serverTLS(cfg, s, roots),
		Handshake:    p.proto.handshake(),
		Ping:         p.proto.ping(),
		Frame:        p.proto.framer(),
		FailFast:     cfg.Distribution == "jump" || cfg.EjectMode == config.EjectFailFast,
		Need:         p.proto.replyNeed,
		IsError:      p.proto.isError,
		AutoEject:    cfg.AutoEjectHosts,
		FailureLimit: cfg.ServerFailureLimit,
		RetryTimeout: cfg.ServerRetryTimeout,
		OnStateChange: func() {
			if srv.Ejected() {
				p.stats.serverEjects.Add(1)
			}
			if err := p.rebuild(); err != nil {
				p.log.Error("rebuilding ring", "err", err)
			}
		},
		Logger: p.log,
	})
	return srv
}

// rebuild makes the ring from the servers that are not ejected. With
// eject_mode fail_fast, and always in the slot mode (distribution jump),
// ejection never moves keys: an ejected server stays in the ring and its
// keys fail fast until it is back.
func (p *pool) rebuild() error {
	p.ringMu.Lock()
	defer p.ringMu.Unlock()
	hc := hashring.Config{Hash: p.cfg.Hash, HashTag: p.cfg.HashTag, Distribution: p.cfg.Distribution, Slots: p.cfg.Slots}
	keep := p.cfg.Distribution == "jump" || p.cfg.EjectMode == config.EjectFailFast
	var live []*pools.Server
	for i, srv := range p.servers {
		if srv.Ejected() && !keep {
			continue
		}
		live = append(live, srv)
		hc.Servers = append(hc.Servers, hashring.Server{Name: p.cfg.Servers[i].Ident, Weight: p.cfg.Servers[i].Weight})
	}
	place, err := hashring.New(hc)
	if err != nil {
		return fmt.Errorf("pool %q: %w", p.cfg.Name, err)
	}
	p.ring.Store(&ring{place: place, servers: live})
	return nil
}

// route returns the server that holds key, or nil when none is live.
func (p *pool) route(key []byte) *pools.Server {
	r := p.ring.Load()
	i := r.place.Pick(key)
	if i < 0 || i >= len(r.servers) {
		return nil
	}
	return r.servers[i]
}

// preconnect dials every server connection (preconnect: true). Failures
// are logged, not fatal, as in nutcracker.
func (p *pool) preconnect() {
	for _, s := range p.servers {
		if err := s.Preconnect(); err != nil {
			p.log.Warn("preconnect", "server", s.Name(), "err", err)
		}
	}
}

// serve accepts clients until the listener closes.
func (p *pool) serve() {
	defer p.wg.Done()
	var delay time.Duration
	for {
		nc, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, keep serving.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			p.log.Warn("accept", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		p.accept(nc)
	}
}

func (p *pool) accept(nc net.Conn) {
	sock := nc
	if tc, ok := nc.(*tls.Conn); ok {
		sock = tc.NetConn()
	}
	if tc, ok := sock.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
		if p.cfg.TCPKeepalive {
			tc.SetKeepAlive(true)
		}
	}
	p.stats.clientAccepted.Add(1)
	cl := newClient(p, nc, p.nextID.Add(1))
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		nc.Close()
		return
	}
	if max := p.cfg.ClientConnections; max > 0 && len(p.clients) >= max {
		// Refuse off the accept loop: over TLS the reply needs a handshake,
		// which a silent client could otherwise stall.
		p.wg.Add(1)
		p.mu.Unlock()
		p.stats.clientRefused.Add(1)
		go func() {
			defer p.wg.Done()
			nc.SetDeadline(time.Now().Add(time.Second))
			nc.Write(p.proto.refuse(nil))
			nc.Close()
		}()
		return
	}
	p.clients[cl] = struct{}{}
	p.stats.clientConnections.Add(1)
	p.wg.Add(1)
	p.mu.Unlock()
	go p.run(cl, true)
}

// run serves cl in its goroutine until it leaves or parks.
func (p *pool) run(cl *client, handshake bool) {
	defer p.wg.Done()
	if handshake {
		if err := tlsHandshake(cl.nc); err != nil {
			p.log.Debug("client TLS handshake failed", "remote", cl.nc.RemoteAddr().String(), "err", err)
			p.stats.clientErr.Add(1)
			cl.nc.Close()
			p.forget(cl)
			return
		}
		// Serve in a fresh goroutine: the handshake grew this one's
		// stack, which a goroutine keeps while it lives, and an idle
		// TLS client would hold it for as long as it stays connected.
		p.wg.Add(1)
		go p.run(cl, false)
		return
	}
	if cl.serve() {
		return // parked: the parker holds it now
	}
	p.forget(cl)
}

// resume gives a parked client that turned readable a goroutine again.
func (p *pool) resume(cl *client) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		cl.closeConn()
		return
	}
	p.wg.Add(1)
	p.mu.Unlock()
	go p.run(cl, false)
}

// forget drops a closed client from the pool.
func (p *pool) forget(cl *client) {
	p.mu.Lock()
	delete(p.clients, cl)
	p.mu.Unlock()
	p.stats.clientConnections.Add(-1)
}

// countClientErr counts how a client connection ended.
func (p *pool) countClientErr(err error) {
	if isEOF(err) {
		p.stats.clientEOF.Add(1)
		return
	}
	p.stats.clientErr.Add(1)
}

// close stops accepting, closes every client and server connection and
// waits for their goroutines.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	if p.ln != nil {
		p.ln.Close()
	}
	for cl := range p.clients {
		cl.closeConn()
	}
	p.mu.Unlock()
	if p.park != nil {
		p.park.close()
	}
	for _, s := range p.servers {
		s.Close()
	}
	p.wg.Wait()
}
