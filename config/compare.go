package config

import "reflect"

// Same reports whether two pools have the same settings, whatever lines of
// their files they were read from: a reload leaves such a pool untouched.
func (p *Pool) Same(q *Pool) bool {
	a, b := *p, *q
	a.line, a.lines, b.line, b.lines = 0, nil, 0, nil
	return reflect.DeepEqual(a, b)
}

// SameListener reports whether two pools accept clients the same way: the
// same listen address and client TLS, so a reload keeps the listener.
func (p *Pool) SameListener(q *Pool) bool {
	return p.Listen == q.Listen && p.TLS == q.TLS
}

// SameServerSettings reports whether the pool-wide settings of server
// connections are the same: timeouts, keepalive, AUTH, database, TLS to
// the servers, ejection. A reload keeps the connections of a server whose
// line did not change only when these did not either.
func (p *Pool) SameServerSettings(q *Pool) bool {
	return p.Redis == q.Redis && p.Timeout == q.Timeout && p.TCPKeepalive == q.TCPKeepalive &&
		p.RedisAuth == q.RedisAuth && p.RedisUsername == q.RedisUsername && p.RedisDB == q.RedisDB &&
		p.ServerConnections == q.ServerConnections && p.ServerSessions == q.ServerSessions && p.ServerTLS == q.ServerTLS &&
		p.AutoEjectHosts == q.AutoEjectHosts && p.ServerFailureLimit == q.ServerFailureLimit &&
		p.ServerRetryTimeout == q.ServerRetryTimeout && p.failFast() == q.failFast() &&
		reflect.DeepEqual(p.Sentinel, q.Sentinel)
}

// failFast says an ejected server's keys fail fast instead of moving.
func (p *Pool) failFast() bool { return p.Distribution == "jump" || p.EjectMode == EjectFailFast }
