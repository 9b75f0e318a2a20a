package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// poolParse is the state of one pool while its keys are read.
type poolParse struct {
	pool  *Pool
	line  int            // line of the pool name
	keys  map[string]int // key -> line where it was given
	slots *yaml.Node     // the slots mapping, resolved once servers are known
	// migrate is the migrate_from mapping, read once the pool's own
	// placement keys are known (migrate.go).
	migrate *yaml.Node
}

// keySpec is one pool key: its name, the YAML node kind its value must be,
// and the setter that checks the value and stores it.
type keySpec struct {
	name string
	kind yaml.Kind
	set  func(pp *poolParse, v *yaml.Node) error
}

// poolKeys lists every pool key. Add new keys here (and cross-key rules in
// finishPool); the parser needs no other change.
var poolKeys = []keySpec{
	{"listen", yaml.ScalarNode, text(setListen)},
	{"hash", yaml.ScalarNode, text(setHash)},
	{"hash_tag", yaml.ScalarNode, text(setHashTag)},
	{"distribution", yaml.ScalarNode, text(setDistribution)},
	{"timeout", yaml.ScalarNode, millis(0, func(p *Pool) *time.Duration { return &p.Timeout })},
	{"backlog", yaml.ScalarNode, count(0, func(p *Pool) *int { return &p.Backlog })},
	{"preconnect", yaml.ScalarNode, flag(func(p *Pool) *bool { return &p.Preconnect })},
	{"redis", yaml.ScalarNode, flag(func(p *Pool) *bool { return &p.Redis })},
	{"redis_auth", yaml.ScalarNode, text(setRedisAuth)},
	{"redis_db", yaml.ScalarNode, count(0, func(p *Pool) *int { return &p.RedisDB })},
	{"server_connections", yaml.ScalarNode, count(1, func(p *Pool) *int { return &p.ServerConnections })},
	{"server_sessions", yaml.ScalarNode, count(1, func(p *Pool) *int { return &p.ServerSessions })},
	{"auto_eject_hosts", yaml.ScalarNode, flag(func(p *Pool) *bool { return &p.AutoEjectHosts })},
	{"server_retry_timeout", yaml.ScalarNode, millis(0, func(p *Pool) *time.Duration { return &p.ServerRetryTimeout })},
	{"server_failure_limit", yaml.ScalarNode, count(0, func(p *Pool) *int { return &p.ServerFailureLimit })},
	{"tcpkeepalive", yaml.ScalarNode, flag(func(p *Pool) *bool { return &p.TCPKeepalive })},
	{"client_connections", yaml.ScalarNode, count(0, func(p *Pool) *int { return &p.ClientConnections })},
	{"servers", yaml.SequenceNode, setServers},
	{"slots", yaml.MappingNode, func(pp *poolParse, v *yaml.Node) error { pp.slots = v; return nil }},
	// Extensions: keys nutcracker does not know (setters in extensions.go).
	{"eject_mode", yaml.ScalarNode, text(setEjectMode)},
	{"client_idle_timeout", yaml.ScalarNode, millis(0, func(p *Pool) *time.Duration { return &p.ClientIdleTimeout })},
	{"client_park_after", yaml.ScalarNode, millis(0, func(p *Pool) *time.Duration { return &p.ClientParkAfter })},
	{"client_write_timeout", yaml.ScalarNode, millis(0, func(p *Pool) *time.Duration { return &p.ClientWriteTimeout })},
	{"max_request_size", yaml.ScalarNode, count(1, func(p *Pool) *int { return &p.MaxRequestSize })},
	{"client_output_limit", yaml.ScalarNode, count(0, func(p *Pool) *int { return &p.ClientOutputLimit })},
	{"max_args", yaml.ScalarNode, count(1, func(p *Pool) *int { return &p.MaxArgs })},
	{"redis_username", yaml.ScalarNode, text(func(p *Pool, s string) error { p.RedisUsername = s; return nil })},
	{"tls_cert_file", yaml.ScalarNode, text(func(p *Pool, s string) error { p.TLS.CertFile = s; return nil })},
	{"tls_key_file", yaml.ScalarNode, text(func(p *Pool, s string) error { p.TLS.KeyFile = s; return nil })},
	{"tls_client_ca_file", yaml.ScalarNode, text(func(p *Pool, s string) error { p.TLS.ClientCAFile = s; return nil })},
	{"server_tls", yaml.ScalarNode, flag(func(p *Pool) *bool { return &p.ServerTLS.Enabled })},
	{"server_tls_ca_file", yaml.ScalarNode, text(func(p *Pool, s string) error { p.ServerTLS.CAFile = s; return nil })},
	{"server_tls_server_name", yaml.ScalarNode, text(func(p *Pool, s string) error { p.ServerTLS.ServerName = s; return nil })},
	{"server_tls_insecure", yaml.ScalarNode, flag(func(p *Pool) *bool { return &p.ServerTLS.Insecure })},
	{"migrate_from", yaml.MappingNode, setMigrateFrom},
	{"migrate_rate", yaml.ScalarNode, count(1, func(p *Pool) *int { return &p.MigrateRate })},
	{"sentinels", yaml.SequenceNode, setSentinels},
	{"sentinel_auth", yaml.ScalarNode, text(func(p *Pool, s string) error { p.Sentinel.Password = s; return nil })},
	{"sentinel_username", yaml.ScalarNode, text(func(p *Pool, s string) error { p.Sentinel.Username = s; return nil })},
	{"replica_reads", yaml.ScalarNode, flag(func(p *Pool) *bool { return &p.Sentinel.ReplicaReads })},
	{"allow_flush", yaml.ScalarNode, flag(func(p *Pool) *bool { return &p.AllowFlush })},
	{"redis_cluster", yaml.ScalarNode, flag(func(p *Pool) *bool { return &p.RedisCluster })},
	{"cluster_retry_timeout", yaml.ScalarNode, millis(1, func(p *Pool) *time.Duration { return &p.ClusterRetryTimeout })},
}

// newPool returns a pool holding nutcracker's defaults, and ours for the
// extension keys.
func newPool(name string) *Pool {
	return &Pool{
		Name:                name,
		Hash:                "fnv1a_64",
		Distribution:        "ketama",
		Backlog:             512,
		ServerConnections:   1,
		ServerSessions:      DefaultServerSessions,
		ServerRetryTimeout:  30 * time.Second,
		ServerFailureLimit:  2,
		EjectMode:           EjectRehash,
		ClientWriteTimeout:  DefaultClientWriteTimeout,
		ClientParkAfter:     DefaultClientParkAfter,
		MaxRequestSize:      DefaultMaxRequestSize,
		MaxArgs:             DefaultMaxArgs,
		ClientOutputLimit:   DefaultClientOutputLimit,
		ClusterRetryTimeout: DefaultClusterRetryTimeout,
	}
}

// parsePool reads one pool's mapping of keys.
func parsePool(name string, k, body *yaml.Node) (*poolParse, error) {
	if body.Kind != yaml.MappingNode {
		return nil, &Error{Pool: name, Line: k.Line, Err: errors.New("a pool must be a mapping of keys")}
	}
	pp := &poolParse{pool: newPool(name), line: k.Line, keys: map[string]int{}}
	for i := 0; i+1 < len(body.Content); i += 2 {
		if err := pp.setKey(body.Content[i], body.Content[i+1]); err != nil {
			return nil, err
		}
	}
	if err := pp.finishPool(); err != nil {
		return nil, err
	}
	pp.pool.line, pp.pool.lines = pp.line, pp.keys
	return pp, nil
}

// setKey applies one key: value pair.
func (pp *poolParse) setKey(k, v *yaml.Node) error {
	fail := func(err error) error { return pp.wrap(k.Value, v.Line, err) }
	if err := plain(k, true); err != nil {
		return pp.wrap("", k.Line, err)
	}
	if k.Kind != yaml.ScalarNode {
		return pp.wrap("", k.Line, errors.New("a key must be a plain string"))
	}
	if err := plain(v, true); err != nil {
		return fail(err)
	}
	keyFail := func(err error) error { return pp.wrap(k.Value, k.Line, err) }
	spec := lookupKey(k.Value)
	if spec == nil && v.Kind == yaml.ScalarNode {
		return keyFail(badValue(v.Value, "unknown key (value %q)", v.Value))
	}
	if spec == nil {
		return keyFail(fmt.Errorf("unknown key (value is %s)", kindName(v.Kind)))
	}
	if first, ok := pp.keys[k.Value]; ok {
		return keyFail(fmt.Errorf("key given twice (first at line %d)", first))
	}
	pp.keys[k.Value] = k.Line
	if v.Kind != spec.kind {
		return keyFail(badValue(v.Value, "want %s, got %s", kindName(spec.kind), kindName(v.Kind)))
	}
	if err := spec.set(pp, v); err != nil {
		return fail(err)
	}
	return nil
}

// wrap turns err into an *Error naming this pool, key and line, keeping
// whatever of those err already names.
func (pp *poolParse) wrap(key string, line int, err error) error {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Err: err}
	}
	if e.Pool == "" {
		e.Pool = pp.pool.Name
	}
	if e.Key == "" {
		e.Key = key
	}
	if e.Line == 0 {
		e.Line = line
	}
	return e
}

func lookupKey(name string) *keySpec {
	for i := range poolKeys {
		if poolKeys[i].name == name {
			return &poolKeys[i]
		}
	}
	return nil
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.ScalarNode:
		return "a single value"
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	return "something else"
}

// finishPool applies the rules that involve more than one key.
func (pp *poolParse) finishPool() error {
	p := pp.pool
	for _, key := range []string{"listen", "servers"} {
		if _, ok := pp.keys[key]; !ok {
			return &Error{Pool: p.Name, Key: key, Line: pp.line, Err: errors.New("required key is missing")}
		}
	}
	if p.RedisAuth != "" && !p.Redis {
		return &Error{Pool: p.Name, Key: "redis_auth", Line: pp.keys["redis_auth"],
			Err: errors.New("redis_auth needs redis: true")}
	}
	if pp.slots != nil {
		if p.Distribution != "jump" {
			return &Error{Pool: p.Name, Key: "slots", Line: pp.keys["slots"],
				Err: fmt.Errorf("slots needs distribution: jump, not %q", p.Distribution)}
		}
		slots, err := slotTable(pp.slots, p.Servers)
		if err != nil {
			return pp.wrap("slots", pp.keys["slots"], err)
		}
		p.Slots = slots
	}
	if err := checkJumpServers(p); err != nil {
		return pp.wrap("servers", pp.keys["servers"], err)
	}
	if err := pp.finishMigration(); err != nil {
		return err
	}
	return pp.finishExtensions()
}

// hashes lists the key hash functions nutcracker 0.5 knows.
var hashes = []string{"one_at_a_time", "md5", "crc16", "crc32", "crc32a", "fnv1_64", "fnv1a_64",
	"fnv1_32", "fnv1a_32", "hsieh", "murmur", "jenkins"}

// distributions lists nutcracker's distributions and our jump.
var distributions = []string{"ketama", "modula", "random", "jump"}

func setHash(p *Pool, s string) error {
	if !oneOf(s, hashes) {
		return badValue(s, "unknown hash %q; want one of %s", s, strings.Join(hashes, ", "))
	}
	p.Hash = s
	return nil
}

func setDistribution(p *Pool, s string) error {
	if !oneOf(s, distributions) {
		return badValue(s, "unknown distribution %q; want one of %s", s, strings.Join(distributions, ", "))
	}
	p.Distribution = s
	return nil
}

func setHashTag(p *Pool, s string) error {
	if len(s) != 2 {
		return badValue(s, "bad hash tag %q: want exactly 2 characters, such as \"{}\"", s)
	}
	p.HashTag = s
	return nil
}

// setRedisAuth stores the password; errors never repeat it.
func setRedisAuth(p *Pool, s string) error {
	p.RedisAuth = s
	return nil
}

func setListen(p *Pool, s string) error {
	l, err := parseListen(s)
	if err != nil {
		return err
	}
	p.Listen = l
	return nil
}

func oneOf(s string, list []string) bool {
	for _, x := range list {
		if s == x {
			return true
		}
	}
	return false
}
