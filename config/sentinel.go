package config

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// Sentinel is how a Redis pool follows Redis Sentinel (sentinels:): each
// server line's name is a Sentinel master name, and the pool sends its
// traffic to the primary the Sentinels report for it.
type Sentinel struct {
	// Addrs are the Sentinels, host:port.
	Addrs []string
	// Username and Password are the Sentinels' AUTH (sentinel_username,
	// sentinel_auth), with the conventions of redis_username and
	// redis_auth: a password alone sends AUTH password.
	Username, Password string
	// ReplicaReads sends read-only commands to a replica of each shard
	// (replica_reads), when one is up; off by default.
	ReplicaReads bool
}

// Enabled reports whether the pool follows Sentinels.
func (s *Sentinel) Enabled() bool { return len(s.Addrs) > 0 }

// setSentinels reads the sentinels: list of host:port.
func setSentinels(pp *poolParse, v *yaml.Node) error {
	if len(v.Content) == 0 {
		return badValue("", "sentinels needs at least one host:port")
	}
	seen := map[string]bool{}
	for _, n := range v.Content {
		if n.Kind != yaml.ScalarNode {
			return &Error{Line: n.Line, Err: errors.New("each sentinel must be a host:port string")}
		}
		host, port, err := net.SplitHostPort(n.Value)
		if err == nil && host == "" {
			err = errors.New("missing host")
		}
		if err == nil {
			if p, perr := strconv.Atoi(port); perr != nil || p < 1 || p > 65535 {
				err = fmt.Errorf("bad port %q", port)
			}
		}
		if err != nil {
			return &Error{Value: n.Value, Line: n.Line, Err: fmt.Errorf("a sentinel is host:port: %w", err)}
		}
		if seen[n.Value] {
			return &Error{Value: n.Value, Line: n.Line, Err: errors.New("sentinel listed twice")}
		}
		seen[n.Value] = true
		pp.pool.Sentinel.Addrs = append(pp.pool.Sentinel.Addrs, n.Value)
	}
	return nil
}

// sentinelRules are the rules between the Sentinel keys and the others.
func (pp *poolParse) sentinelRules() []rule {
	p := pp.pool
	s := &p.Sentinel
	_, authGiven := pp.keys["sentinel_auth"]
	_, userGiven := pp.keys["sentinel_username"]
	_, readsGiven := pp.keys["replica_reads"]
	var unnamed, unix bool
	for _, srv := range p.Servers {
		unnamed = unnamed || srv.Name == ""
		unix = unix || srv.Network == "unix"
	}
	return []rule{
		{"sentinels", s.Enabled() && !p.Redis, "sentinels needs redis: true"},
		{"sentinels", s.Enabled() && unnamed,
			"with sentinels, every server line needs a name: the Sentinel master name (host:port:weight name)"},
		{"sentinels", s.Enabled() && unix, "with sentinels, servers are TCP: Sentinels report host and port"},
		{"sentinel_auth", authGiven && !s.Enabled(), "sentinel_auth needs sentinels"},
		{"sentinel_username", userGiven && !s.Enabled(), "sentinel_username needs sentinels"},
		{"sentinel_username", userGiven && s.Password == "", "sentinel_username needs sentinel_auth (the password)"},
		{"replica_reads", readsGiven && !s.Enabled() && !p.RedisCluster,
			"replica_reads needs sentinels or redis_cluster (they name each shard's replicas)"},
	}
}
