package proxy

import (
	"crypto/tls"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/listeners"
)

// Check finds, without listening or removing anything, every error Start
// would meet, so that shardproxy -t refuses what a start would refuse. It
// builds the pools as New does (certificate files, rings) and checks each
// pool's listen value with listeners.Check, which tries what listening
// would try without taking the port or the path. What it cannot see is a
// TCP port held by another process, as during a restart the running proxy
// holds it.
func Check(cfg *config.Config) error {
	px, err := New(cfg, Options{})
	if err != nil {
		return err
	}
	defer px.Close()
	for _, p := range px.pools {
		if err := listeners.Check(p.cfg); err != nil {
			return err
		}
	}
	return nil
}

// listen opens the pool's listener, speaking TLS when the pool has
// tls_cert_file. A unix listen path is taken only when nothing is there or
// a stale socket is (see listeners.Open).
func (p *pool) listen() error {
	l, err := openListener(p.cfg, p.tls)
	if err != nil {
		return err
	}
	p.ln = l
	return nil
}

// openListener opens the listener cfg describes, speaking TLS with tc
// when it is not nil.
func openListener(cfg *config.Pool, tc *tls.Config) (*listener, error) {
	sock, err := listeners.Open(cfg)
	if err != nil {
		return nil, err
	}
	return newListener(sock, tc), nil
}
