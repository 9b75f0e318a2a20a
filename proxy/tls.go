package proxy

import (
	"crypto/tls"
	"net"
	"time"
)

// The TLS settings of a pool's listener and of its server connections are
// built by package config (config.Pool.ClientTLSConfig, ServerRoots,
// ServerTLSConfig), where `shardproxy reshard` builds them too.

// tlsHandshakeTimeout bounds a client's TLS handshake, so a client that
// connects and sends nothing does not hold a goroutine mid-handshake.
const tlsHandshakeTimeout = 10 * time.Second

// tlsHandshake completes the TLS handshake of a client connection within
// tlsHandshakeTimeout; a plain connection needs none.
func tlsHandshake(nc net.Conn) error {
	tc, ok := nc.(*tls.Conn)
	if !ok {
		return nil
	}
	tc.SetDeadline(time.Now().Add(tlsHandshakeTimeout))
	if err := tc.Handshake(); err != nil {
		return err
	}
	return tc.SetDeadline(time.Time{})
}
