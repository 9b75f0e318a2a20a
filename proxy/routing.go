package proxy

import (
	"fmt"
	"time"

	"github.com/shardproxy/shardproxy/codec/memcache"
	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/hashring"
	"github.com/shardproxy/shardproxy/pools"
)

// routing is a pool's routing state at one moment: its configuration, its
// servers, the placement of keys over the servers in the ring, and the
// limits its clients are held to. It is immutable: ejection (and reload,
// resharding and a server's new address) build a new value from the
// current one and swap it in whole (pool.swapRouting). A client loads it
// once per batch, and every key goes to its server through one function,
// locate.
type routing struct {
	cfg     *config.Pool
	servers []*pools.Server // every server of the pool, in file order
	place   *hashring.Placement
	ring    []*pools.Server // placement index -> server
	lim     limits
}

// limits are the bounds a pool's clients are held to, from its
// configuration.
type limits struct {
	maxRequest   int           // bytes of one request
	idleTimeout  time.Duration // close a client idle this long; 0 = never
	timeout      time.Duration // a server's reply timeout; 0 = none
	parkAfter    time.Duration // park a client idle this long; 0 = never
	writeTimeout time.Duration // cut off a client not reading this long
	outputLimit  int           // bytes of unread replies; 0 = unlimited
	resp         resp.Limits
	memcache     memcache.Limits
}

// newRouting builds the routing of cfg over servers (one per server line,
// in file order), leaving ejected servers out of the ring unless their
// keys fail fast.
func newRouting(cfg *config.Pool, servers []*pools.Server) (*routing, error) {
	rt := &routing{cfg: cfg, servers: servers, lim: newLimits(cfg)}
	hc := hashring.Config{Hash: cfg.Hash, HashTag: cfg.HashTag, Distribution: cfg.Distribution, Slots: cfg.Slots}
	for i, srv := range servers {
		if srv.Ejected() && !rt.failFast() {
			continue
		}
		rt.ring = append(rt.ring, srv)
		hc.Servers = append(hc.Servers, hashring.Server{Name: cfg.Servers[i].Ident, Weight: cfg.Servers[i].Weight})
	}
	place, err := hashring.New(hc)
	if err != nil {
		return nil, fmt.Errorf("pool %q: %w", cfg.Name, err)
	}
	rt.place = place
	return rt, nil
}

// rebuilt returns the routing of the same pool for its servers' current
// ejection states.
func (rt *routing) rebuilt() (*routing, error) { return newRouting(rt.cfg, rt.servers) }

// failFast says an ejected server stays in the ring and its keys fail
// fast (eject_mode fail_fast, and always in the slot mode), so ejection
// never moves a key.
func (rt *routing) failFast() bool {
	return rt.cfg.Distribution == "jump" || rt.cfg.EjectMode == config.EjectFailFast
}

// locate returns the ring index of the server that holds key now, or -1
// when no server is in the ring. It is the one place where a key meets
// its server: every request's keys are routed through it.
func (rt *routing) locate(key []byte) int {
	i := rt.place.Pick(key)
	if i < 0 || i >= len(rt.ring) {
		return -1
	}
	return i
}

// server returns the server that holds key now, or nil.
func (rt *routing) server(key []byte) *pools.Server {
	if i := rt.locate(key); i >= 0 {
		return rt.ring[i]
	}
	return nil
}

func newLimits(cfg *config.Pool) limits {
	l := limits{
		maxRequest:   cfg.MaxRequestSize,
		idleTimeout:  cfg.ClientIdleTimeout,
		timeout:      cfg.Timeout,
		parkAfter:    cfg.ClientParkAfter,
		writeTimeout: cfg.ClientWriteTimeout,
		outputLimit:  cfg.ClientOutputLimit,
	}
	if l.maxRequest <= 0 {
		l.maxRequest = config.DefaultMaxRequestSize
	}
	l.resp = resp.Limits{MaxArgs: cfg.MaxArgs, MaxBulk: l.maxRequest}
	l.memcache.MaxValue = min(l.maxRequest, maxMemcacheValue)
	if cfg.MaxArgs > 0 {
		l.memcache.MaxKeys = min(cfg.MaxArgs, memcache.DefaultMaxKeys)
	}
	return l
}
