package config

import (
	"errors"
	"time"
)

// Eject modes: what happens to an ejected server's keys.
const (
	// EjectRehash takes an ejected server out of the ring, so its keys move
	// to the other servers (nutcracker's behaviour).
	EjectRehash = "rehash"
	// EjectFailFast keeps an ejected server in the ring: requests for its
	// keys fail at once while it is ejected, and no key moves.
	EjectFailFast = "fail_fast"
)

// Defaults of the extension keys.
const (
	DefaultMaxRequestSize     = 512 << 20
	DefaultMaxArgs            = 1 << 20
	DefaultClientWriteTimeout = 30 * time.Second
	DefaultClientParkAfter    = time.Second
	// DefaultServerSessions bounds the session connections per server
	// (server_sessions): transactions and blocking commands in progress.
	DefaultServerSessions = 256
	// DefaultClientOutputLimit bounds the replies one client has not read
	// yet (Redis's client-output-buffer-limit, which is unlimited for
	// normal clients by default).
	DefaultClientOutputLimit = 256 << 20
)

// ClientTLS is the TLS a pool's listener speaks to its clients. The zero
// value means plain TCP.
type ClientTLS struct {
	CertFile string // PEM certificate chain presented to clients
	KeyFile  string // PEM private key of CertFile
	// ClientCAFile, when set, makes client certificates required; they
	// must be signed by a CA in this PEM file.
	ClientCAFile string
}

// Enabled reports whether the listener speaks TLS.
func (c ClientTLS) Enabled() bool { return c.CertFile != "" }

// ServerTLS is the TLS a pool speaks to its servers.
type ServerTLS struct {
	Enabled bool
	// CAFile is a PEM file of the CAs that sign server certificates; ""
	// means the system's roots.
	CAFile string
	// ServerName is the name sent in SNI and checked in each server's
	// certificate; "" means the host of each server line.
	ServerName string
	// Insecure skips the verification of server certificates.
	Insecure bool
}

func setEjectMode(p *Pool, s string) error {
	if s != EjectRehash && s != EjectFailFast {
		return badValue(s, "unknown eject_mode %q; want %s or %s", s, EjectRehash, EjectFailFast)
	}
	p.EjectMode = s
	return nil
}

// rule is one cross-key check: when bad holds, key is wrong with msg.
type rule struct {
	key string
	bad bool
	msg string
}

// finishExtensions applies the rules between extension keys and the keys
// they depend on.
func (pp *poolParse) finishExtensions() error {
	p := pp.pool
	_, ejectGiven := pp.keys["eject_mode"]
	unixServer := false
	for _, s := range p.Servers {
		unixServer = unixServer || s.Network == "unix"
	}
	rules := []rule{
		{"eject_mode", ejectGiven && !p.AutoEjectHosts, "eject_mode needs auto_eject_hosts: true"},
		{"eject_mode", p.Distribution == "jump" && p.EjectMode == EjectRehash && ejectGiven,
			"distribution jump never moves keys: eject_mode must be fail_fast"},
		{"redis_username", p.RedisUsername != "" && !p.Redis, "redis_username needs redis: true"},
		{"allow_flush", p.AllowFlush && !p.Redis, "allow_flush needs redis: true (memcache pools serve flush_all as nutcracker does)"},
		{"redis_username", p.RedisUsername != "" && p.RedisAuth == "", "redis_username needs redis_auth (the password)"},
		{"tls_cert_file", p.TLS.CertFile != "" && p.TLS.KeyFile == "", "tls_cert_file needs tls_key_file"},
		{"tls_key_file", p.TLS.KeyFile != "" && p.TLS.CertFile == "", "tls_key_file needs tls_cert_file"},
		{"tls_client_ca_file", p.TLS.ClientCAFile != "" && p.TLS.CertFile == "",
			"tls_client_ca_file needs tls_cert_file and tls_key_file"},
		{"server_tls_ca_file", p.ServerTLS.CAFile != "" && !p.ServerTLS.Enabled, "server_tls_ca_file needs server_tls: true"},
		{"server_tls_server_name", p.ServerTLS.ServerName != "" && !p.ServerTLS.Enabled,
			"server_tls_server_name needs server_tls: true"},
		{"server_tls_insecure", p.ServerTLS.Insecure && !p.ServerTLS.Enabled, "server_tls_insecure needs server_tls: true"},
		{"server_tls_insecure", p.ServerTLS.Insecure && p.ServerTLS.CAFile != "",
			"server_tls_insecure skips verification, so server_tls_ca_file would be ignored: give one of them"},
		{"server_tls", p.ServerTLS.Enabled && unixServer && p.ServerTLS.ServerName == "" && !p.ServerTLS.Insecure,
			"a unix socket server has no host name to verify: set server_tls_server_name"},
	}
	if err := pp.clusterError(); err != nil {
		return err
	}
	rules = append(rules, pp.sentinelRules()...)
	for _, r := range rules {
		if r.bad {
			return &Error{Pool: p.Name, Key: r.key, Line: pp.lineOf(r.key), Err: errors.New(r.msg)}
		}
	}
	if p.Distribution == "jump" {
		p.EjectMode = EjectFailFast
	}
	return nil
}

// lineOf returns the line where key was given, else the pool's line.
func (pp *poolParse) lineOf(key string) int {
	if line, ok := pp.keys[key]; ok {
		return line
	}
	return pp.line
}
