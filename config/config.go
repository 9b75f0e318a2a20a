package config

import (
	"fmt"
	"os"
	"time"
)

// SlotCount is the number of slots in a jump distribution's slot table.
const SlotCount = 256

// Config is a whole configuration file: its pools in file order.
type Config struct {
	Pools []*Pool
	// Digest identifies the file's content: the first 12 hex digits of
	// its SHA-256 (empty for a Config not parsed from bytes).
	Digest string
}

// Pool is one named pool: a listen address, the servers behind it, and how
// keys are placed on them. Durations of zero mean "none" (wait forever).
type Pool struct {
	Name   string
	Listen Listen

	Hash         string // key hash function name, such as "fnv1a_64"
	HashTag      string // two bytes, such as "{}", or "" for none
	Distribution string // "ketama", "modula", "random" or "jump"

	Timeout time.Duration // per-request server timeout; 0 = none
	Backlog int

	Preconnect     bool
	Redis          bool // false means memcache
	AutoEjectHosts bool
	TCPKeepalive   bool

	RedisAuth string
	RedisDB   int

	ServerConnections int
	// ServerSessions bounds the session connections per server: those a
	// client has to itself during a transaction or a blocking command.
	ServerSessions     int
	ServerRetryTimeout time.Duration
	ServerFailureLimit int
	ClientConnections  int // 0 = unlimited

	Servers []Server

	// Slots maps each of the SlotCount slots to an index in Servers when
	// the file gives an explicit slot table (distribution jump), else nil.
	Slots []int

	// Extensions (nutcracker files never contain them; see extensions.go).

	EjectMode          string        // EjectRehash or EjectFailFast (always fail_fast for jump)
	ClientIdleTimeout  time.Duration // close a client idle this long; 0 = never
	ClientWriteTimeout time.Duration // cut off a client not reading its replies this long; 0 = never
	ClientParkAfter    time.Duration // park a client idle this long (no goroutine, no buffer); 0 = never
	MaxRequestSize     int           // bytes of one request (RESP bulk, memcache value up to 128 MB)
	MaxArgs            int           // RESP arguments of one request; memcache keys of one get
	ClientOutputLimit  int           // bytes of replies a client has not read yet; 0 = unlimited
	RedisUsername      string        // ACL user for the servers' AUTH; "" sends AUTH password only
	TLS                ClientTLS     // TLS to clients; zero = plain
	ServerTLS          ServerTLS     // TLS to servers
	// MigrateFrom is where the data is now while a migration is
	// configured (migrate_from; redis pools only), else nil: keys whose
	// owner differs move to the pool's own placement.
	MigrateFrom *Placement
	MigrateRate int // the background mover's keys per second; 0 = DefaultMigrateRate
	// Sentinel is how the pool follows Redis Sentinel failovers
	// (sentinels:); its zero value follows none.
	Sentinel Sentinel
	// AllowFlush lets FLUSHDB and FLUSHALL through to every server of
	// the pool (allow_flush; redis pools only); off by default.
	AllowFlush bool
	// RedisCluster says the servers are seed nodes of a Redis Cluster
	// (redis_cluster): the cluster's slot map places keys.
	RedisCluster bool
	// ClusterRetryTimeout bounds how long a cluster pool retries a
	// request the cluster cannot serve yet (cluster_retry_timeout).
	ClusterRetryTimeout time.Duration

	line  int            // line of the pool's name; 0 when not read from a file
	lines map[string]int // key -> line where the file gives it
}

// Line returns the line where the file gives key, else the line of the
// pool's name, so that errors found after parsing (a listen host that does
// not resolve, say) can name it too. It is 0 for a Pool not read from a
// file.
func (p *Pool) Line(key string) int {
	if line, ok := p.lines[key]; ok {
		return line
	}
	return p.line
}

// Listen is where a pool accepts clients.
type Listen struct {
	Network string      // "tcp" or "unix"
	Addr    string      // host:port (IPv6 in brackets) or socket path
	Perm    os.FileMode // unix socket permissions; 0 = leave the default
}

// Server is one backend of a pool.
type Server struct {
	Network string // "tcp" or "unix"
	Addr    string // host:port (IPv6 in brackets) or socket path
	Host    string // host name or IP address; "" for a unix socket
	Port    int    // 0 for a unix socket
	Weight  int    // >= 1
	Name    string // explicit name from the server line, or ""
	Ident   string // nutcracker identity: Name, else host for port 11211, else host:port
}

// Load reads and parses the configuration file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Error is a configuration error. Its text names the pool, the key, the
// offending value and the YAML line, like
//
//	pool "alpha": key "hash": unknown hash "fnv" (line 3)
type Error struct {
	Pool  string // pool name; "" for an error about the whole file
	Key   string // key within the pool; "" for an error about the pool
	Value string // offending value as written; "" when none or secret
	Line  int    // 1-based line in the file; 0 when unknown
	Err   error  // what is wrong
}

// Error formats the error with its pool, key and line.
func (e *Error) Error() string {
	s := ""
	if e.Pool != "" {
		s += fmt.Sprintf("pool %q: ", e.Pool)
	}
	if e.Key != "" {
		s += fmt.Sprintf("key %q: ", e.Key)
	}
	if e.Err != nil {
		s += e.Err.Error()
	} else {
		s += "invalid configuration"
	}
	if e.Line > 0 {
		s += fmt.Sprintf(" (line %d)", e.Line)
	}
	return s
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// badValue returns an error about value, described by format and args.
func badValue(value, format string, args ...any) *Error {
	return &Error{Value: value, Err: fmt.Errorf(format, args...)}
}
