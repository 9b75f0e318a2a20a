// Package proxy is shardproxy's core: it owns each pool's listener, servers
// and ring, serves client connections in RESP or the memcache text protocol,
// routes every request to the server that holds its key, and answers clients
// in request order.
//
// A request's way through: on Linux a plain client is served by its pool's
// event loops (loop.go, park.go; its socket a bare descriptor, clientsock.go):
// it waits in a loop's epoll set with no goroutine and no buffer, the loop
// reads what came into a batch and the goroutine that completes the batch's
// last call writes its replies. Any other client (TLS, other systems, one in
// a transaction, a blocking command or a subscription) has a goroutine that
// waits for readability without holding a buffer (client.go), takes a batch
// buffer from a pool and reads. The protocol (redis.go, memcache.go, behind the two small interfaces in
// protocol.go) frames complete requests, looks each command up in the
// command table (package commands: how it is served, its arity, where its
// keys are), and either records a local reply or finds the
// server of each key and enqueues a call on that server's connection
// (package pools).
//
// Routing has one seam (routing.go): a pool's routing value holds its
// configuration, its servers, the placement of keys over the servers in
// the ring and its clients' limits. It is immutable; ejection builds a new
// one from the current one and swaps it in atomically, as reload,
// resharding and a server's new address do. A client loads it once per
// batch (batch.rt). routing.go is the one place that chooses a key's
// server: its owner now (routing.locate, through which every request's
// keys go), its owner before a migration (routing.Owners) and, for a
// read with replica_reads, a replica (readServer); both placements are
// asked through one function, placed.locate.
//
// Resharding (migrate_from) is package migration, behind a small seam
// the pool fills in (migration.go: migration.Pool, with the routing as
// its migration.Placement). While a migration is configured, a request
// calls it from one place (moveKeys): a key whose old owner differs from
// its owner now is moved with MIGRATE before its request is enqueued, the
// client waiting for it, while the pool's migration.Mover walks the old
// owners with SCAN and asks the routing where each key goes; every move
// runs on connections of the migration's own, never on the clients'
// shared ones. Without a migration the check is one nil comparison.
// A migration with a start_at routes each batch by the old placement
// alone until then (routing.active), so that proxies of a fleet agree.
// A cluster pool's migration (cluster_migrate.go) moves a nutcracker
// pool's keys into the cluster: each routing of a slot map carries it
// over (routing.migrating), and a MIGRATE a node refuses for a slot it
// no longer serves is followed as a client's redirect is.
//
// Following Sentinel is package failover, behind the same kind of seam
// (failover.go: failover.Pool). The pool asks its failover.Follower where
// a shard's primary is and which replica serves a client's reads; the
// Follower moves the shard's servers (pools.Server.SetAddr) and holds
// their requests during a promotion (pools.Server.Hold). New and Check do
// no I/O: the Sentinels are first asked at Start.
//
// Multi-key commands (MGET, MSET, DEL, UNLINK, EXISTS, TOUCH; memcache get
// and gets with many keys) become one fragment per server. After the whole
// batch is enqueued the client flushes each touched connection once, so
// requests of many clients share one write; one reader per server connection
// completes calls in FIFO order, and the last completion wakes the client,
// which sends to the primary any read a replica did not serve (replicas.go),
// merges fragments and writes all replies of the batch in one write
// that never waits: what the socket does not take queues for a writer
// goroutine (output.go), and the client's goroutine goes on reading, so a
// client that writes a whole pipeline before it reads cannot stall it. The
// queue is bounded by client_output_limit.
// Errors travel on the call (timeout, server down, ejected) and become an
// -ERR or SERVER_ERROR reply; only input that cannot be framed closes the
// client.
//
// A client speaks RESP2 until HELLO 3 (resp3.go, redis_local.go); a RESP3
// client's requests go on server connections that said HELLO 3
// (pools.Server.Conn3), so the servers encode its replies. Transactions,
// blocking commands (session.go, blocking.go) and subscriptions
// (pubsub.go, subscriber.go) run on session connections a client has to
// itself (pools.Server.Session): one request at a time, the server's reply
// being the client's; a request of a session starts a batch of its own,
// so that nothing the client sent before can overtake it on another
// connection. The keyspace commands (SCAN, KEYS, ...) are in keyspace.go;
// the streams' keys are found by the command table (package commands,
// streams.go).
//
// Counting stays off the request's way: counters are atomics (a pool's
// requests per command in a fixed array indexed by the command table's
// ids, and their errors and latency as the client sees it, counted once
// per run of a command when the batch's replies are written,
// commandcount.go; each server's latency histogram in pools), and
// Snapshot (snapshot.go) reads them all into the plain values of package
// stats, which renders nutcracker's stats document from them (served on
// the stats port, stats.go) and holds the readiness rule, stats.Pool.Ready;
// package metrics serves the same values to Prometheus.
package proxy
