// Package config reads a nutcracker (twemproxy 0.5) YAML configuration file
// into validated, typed structs, once, before anything is started.
//
// A file is a mapping of pool name to pool, kept in file order. Every key of
// nutcracker 0.5 is accepted with nutcracker's meaning and default:
//
//	listen                host:port, [ipv6]:port, ipv6:port, hostname:port, or
//	                      "/path/to.sock [octal permissions]"           (required)
//	servers               list of "host:port:weight [name]" or
//	                      "/path/to.sock:weight [name]", weight >= 1    (required)
//	hash                  one_at_a_time md5 crc16 crc32 crc32a fnv1_64 fnv1a_64
//	                      fnv1_32 fnv1a_32 hsieh murmur jenkins        (fnv1a_64)
//	hash_tag              exactly two bytes, such as "{}"               (none)
//	distribution          ketama modula random, and our jump            (ketama)
//	timeout               milliseconds; 0 or absent waits forever       (none)
//	backlog               listen backlog                                (512)
//	preconnect            true or false                                 (false)
//	redis                 true for redis, false for memcache            (false)
//	redis_auth            password sent with AUTH; needs redis: true    (none)
//	redis_db              database index >= 0                          (0)
//	server_connections    connections per server, > 0                   (1)
//	auto_eject_hosts      true or false                                 (false)
//	server_retry_timeout  milliseconds                                  (30000)
//	server_failure_limit  failures before ejection                      (2)
//	tcpkeepalive          true or false                                 (false)
//	client_connections    0 means unlimited; enforced, unlike nutcracker (0)
//
// Value rules follow nutcracker: booleans are exactly "true" or "false";
// numbers are plain decimal digits (quoted or not), never negative; a key
// given twice, an unknown key, an empty value, anchors, aliases and explicit
// tags are errors. A server's identity (Server.Ident, used for placement and
// stats) is its explicit name, else "host:port" as written, else the host
// alone when the port is 11211; for a unix socket without a name it is the
// path followed by a colon, as in nutcracker. Identities must be unique
// within a pool, and two pools may not share a listen address.
//
// Note for placement code: nutcracker orders a pool's servers by identity
// (byte-wise) before it builds its continuum or modula table, so the order of
// server lines in the file does not change where keys go. Pool.Servers keeps
// the file order; sort by Ident to reproduce nutcracker's placement.
//
// # Extensions
//
// distribution: jump selects a 256-slot table: a key hashes to a slot, and
// the slot names a server. The optional key slots gives that table
// explicitly, as a mapping of server identity to slot ranges; every slot
// 0..255 must be given to exactly one server:
//
//	distribution: jump
//	slots:
//	  shard-a: "0-127"
//	  shard-b: "128-200,201-255"
//
// Pool.Slots then holds, for each slot, the index of its server in
// Pool.Servers; without the key it is nil and placement code derives the
// table itself (hashring.DefaultSlotTable). A jump pool has at most 256
// servers, and without slots every server must get a slot in the derived
// table: a server whose weighted share rounds to none is refused.
//
// Limits, fail-fast ejection, backend ACL users and TLS are further keys,
// with the same value rules:
//
//	eject_mode              rehash: an ejected server leaves the ring and its
//	                        keys move (nutcracker); fail_fast: it stays, its
//	                        keys get an error until it is back. Needs
//	                        auto_eject_hosts: true; jump is always
//	                        fail_fast                                  (rehash)
//	client_idle_timeout     ms; close a client idle that long; 0 = never  (0)
//	client_park_after       ms; a client (TCP, unix or TLS) idle that
//	                        long gives up its goroutine and waits in an
//	                        epoll set (Linux); 0 = never           (1000)
//	client_write_timeout    ms; cut off a client that does not read its
//	                        replies for that long; 0 = never          (30000)
//	max_request_size        bytes of one request and of any bulk in it,
//	                        >= 1; memcache values are further capped
//	                        at 128 MB                             (536870912)
//	max_args                arguments of one RESP request, command name
//	                        included, >= 1; keys of one memcache get, at
//	                        most 65536                              (1048576)
//	redis_username          ACL user: servers get AUTH user password;
//	                        needs redis_auth                          (none)
//	tls_cert_file           PEM certificate chain: the listener speaks TLS;
//	tls_key_file            both or neither                           (none)
//	tls_client_ca_file      PEM CAs: clients must present a certificate
//	                        signed by one; needs tls_cert_file        (none)
//	server_tls              true: connect to servers with TLS        (false)
//	server_tls_ca_file      PEM CAs that sign server certificates
//	                                                        (system roots)
//	server_tls_server_name  name sent in SNI and verified (host of each
//	                        server line; required for unix servers)
//	server_tls_insecure     true: do not verify server certificates;
//	                        not with server_tls_ca_file              (false)
//	allow_flush             true: FLUSHDB and FLUSHALL go to every server
//	                        of a redis pool; else they are refused  (false)
//
// A Redis pool may state a migration (see migrate.go):
//
//	migrate_from            the placement the data is in now: a mapping of
//	                        servers, distribution, hash, hash_tag and
//	                        slots, each defaulting to the pool's own; a
//	                        server named in both lists must be the same
//	                        server, and all must be TCP. Refused on
//	                        memcache pools. In a cluster pool it is
//	                        the nutcracker pool the keys move from into
//	                        the cluster: servers is required (no seed
//	                        node among them), and the others default
//	                        to nutcracker's: fnv1a_64, ketama        (none)
//	  start_at              in migrate_from: when the migration starts, an
//	                        RFC 3339 time; before it the pool routes by
//	                        migrate_from's placement alone         (at once)
//	migrate_rate            keys per second the background mover moves,
//	                        >= 1                                      (1000)
//
// A Redis pool may follow Redis Sentinel failovers (see sentinel.go):
//
//	sentinels               list of Sentinel host:port; each server line
//	                        then needs a name, the Sentinel master name,
//	                        and its host:port is used only when no
//	                        Sentinel answers at start                 (none)
//	sentinel_auth           password sent to the Sentinels with AUTH  (none)
//	sentinel_username       ACL user: Sentinels get AUTH user password;
//	                        needs sentinel_auth                       (none)
//	replica_reads           true: read-only commands go to a replica of
//	                        each shard when one is up; also with
//	                        redis_cluster (a replica of the slot's
//	                        primary, over READONLY)                  (false)
//
// A Redis pool may front a Redis Cluster (see cluster.go):
//
//	redis_cluster           true: servers are seed nodes of a cluster,
//	                        whose slot map (CLUSTER SLOTS) places keys:
//	                        CRC16 of the key or its {hash tag}, 16384
//	                        slots. hash, hash_tag, distribution, slots,
//	                        sentinels, a redis_db other than 0 and the
//	                        ejection keys are refused; servers are TCP
//	                                                                 (false)
//	cluster_retry_timeout   milliseconds a request the cluster cannot
//	                        serve yet (TRYAGAIN, CLUSTERDOWN, a node not
//	                        reached before it was written) is retried
//	                        before the client gets the error; >= 1  (5000)
//
// A cluster pool's timeout defaults to 5000 ms, not none: a primary that
// hangs would otherwise keep the requests written to it after the cluster
// failed over from it.
//
// Errors in migrate_from name its keys as "migrate_from.servers" and the
// like. Config.Warnings reports a configured migration, which shardproxy
// -t prints: it should be removed once complete; the warning adds a hint
// for a fleet of proxies when start_at is missing or more than a day past.
//
// The server_tls_* keys need server_tls: true. Certificate files are read
// when the proxy starts and by shardproxy -t, not here.
//
// # What shardproxy -t checks beyond this package
//
// Parse needs no network and touches no file but its own. shardproxy -t
// then runs proxy.Check, which finds every error a start would meet,
// through the same code: it reads the certificate files, resolves each TCP
// listen host (a lookup limited to 5 seconds) and binds it on a port the
// system picks, so an address of another machine is refused, and applies
// the unix listen path rule. The one error it cannot see is a TCP port
// held by another process: during a restart the running proxy holds it.
//
// The unix listen path rule: nothing at the path, or a stale socket (one
// that refuses connections, left by a process that ended without removing
// it), which is removed. A socket another process accepts on and any file
// that is not a socket (a regular file, a directory, a symbolic link) are
// errors naming the pool, the path and why.
//
// Server host names are not resolved, by -t or at start: a server is
// dialled, and its name resolved, on every connect, so a name that does not
// resolve yet only fails its requests. nutcracker -t also accepts it, and
// nutcracker starts with it.
//
// # Where nutcracker and this package differ, on purpose
//
// Values nutcracker silently wraps or truncates are errors here: numbers
// above 2147483647, socket permissions that are not octal, server lines with
// an empty name or host, and hosts with a colon that are not IPv6 addresses.
// Values nutcracker rejects for no good reason are accepted: YAML flow style
// ({...} and [...]), document markers (---), [ipv6]:port addresses, and the
// jump distribution with its slots key. A value written as ~ or null is an
// error here, where nutcracker takes it as text.
//
// Host names are not resolved here, but shardproxy -t resolves listen host
// names, as nutcracker -t does: both refuse one that does not resolve.
// Where shardproxy -t refuses a file nutcracker -t accepts, nutcracker
// fails or does harm at start: a listen address of another machine (its
// start fails), a unix listen path where another process listens
// (nutcracker removes the other process's socket and takes the path), and
// a unix listen path that is not a socket (nutcracker deletes the file).
//
// # Adding a key
//
// Every pool key is one row of the poolKeys table in keys.go: its name, the
// YAML node kind it takes, and a setter. Cross-key rules go in finishPool,
// or in finishExtensions (extensions.go) for keys nutcracker does not know.
package config
