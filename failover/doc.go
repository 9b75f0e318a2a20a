// Package failover follows the failovers of a pool's shards under Redis
// Sentinel: it keeps, for each shard (a Sentinel master name), where its
// primary is, moves the pool's servers of that shard when the Sentinels
// report a new one, holds a shard's requests while a failover's outcome is
// unknown, and, with replica_reads, keeps a server per replica of each
// shard that reads may go to.
//
// It sits beside the request path: package proxy asks it where a shard's
// primary is (PrimaryAddr), which replica serves a client's reads
// (Replica), and how a primary's connections must check the server
// (PrimaryOptions); the Follower reaches the pool only through the small
// Pool interface proxy fills in. It uses package sentinel to talk to the
// Sentinels and package pools for the servers.
package failover
