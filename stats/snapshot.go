package stats

import "time"

// Snapshot is a proxy's counters and state at one moment, as plain
// values: what the stats document (Render) shows and what package metrics
// exports. The proxy's hot path only adds to atomic counters; a snapshot
// reads them.
type Snapshot struct {
	Time    time.Time
	Version string // the proxy's version, "0.1.0"
	Config  Config
	Pools   []Pool // the running pools, in file order
}

// Config is the running configuration's digest and what became of
// the reloads.
type Config struct {
	Digest         string // the running configuration file's digest
	Reloads        int64  // reloads applied
	ReloadFailures int64  // reloads refused (a bad file changes nothing)
	// LastReloadError is why the last refused reload was refused; it
	// stays after a later reload succeeds ("" when none was refused).
	LastReloadError string
	// LastReloadAt is when a reload was last tried (zero: never), and
	// LastReloadFailed whether that one was refused.
	LastReloadAt     time.Time
	LastReloadFailed bool
}

// Pool is one pool's counters and state, in nutcracker's terms.
type Pool struct {
	Name      string
	Redis     bool // RESP; else memcache
	Listening bool // its listener is open
	// FailFast says an ejected server stays in the ring and its keys
	// answer "server ejected" at once (eject_mode fail_fast, distribution
	// jump); else its keys move to the other servers.
	FailFast  bool
	AutoEject bool

	ClientEOF         int64 // clients that went away
	ClientErr         int64 // clients closed for an error
	ClientConnections int64 // clients now
	ClientAccepted    int64 // clients ever accepted, refused ones too
	ClientRefused     int64 // clients turned away at client_connections
	ClientOverflow    int64 // clients closed over client_output_limit
	ClientParked      int64 // idle clients now waiting without a goroutine
	// Subscribers are the clients subscribed now; Subscriptions their
	// channels, patterns and shard channels, all together.
	Subscribers, Subscriptions int64
	ClientBuffered             int64 // clients now holding a request buffer
	ServerEjects               int64 // ejections of its servers
	ForwardError               int64 // requests answered with an error instead of a server's reply
	Fragments                  int64 // fragments of multi-key requests split over servers
	Requests                   int64 // requests answered, local replies included

	// A migration (migrate_from): the old owners still to scan (0 when
	// complete or when none is configured), the keys moved (MIGRATEs
	// answered OK, on access and in the background) and the MIGRATEs
	// and SCANs that failed. MigrationStarted says the pool routes by
	// the new placement: false before migrate_from's start_at, and
	// without a migration.
	MigrationStarted bool
	MigrationPending int64
	KeysMigrated     int64
	MigrationErrors  int64
	// MigrationKeysPerSec is the keys moved per second over the last
	// ten seconds.
	MigrationKeysPerSec float64
	// With sentinels: Sentinel is set, and SentinelsUp of Sentinels
	// have the pool's subscription to +switch-master now.
	Sentinel               bool
	SentinelsUp, Sentinels int

	// Commands are the requests per command, their errors and their
	// latency, those of commands outside the proxy's command table as
	// "unknown"; commands never requested are left out.
	Commands []Command
	Servers  []Server // in file order; a cluster pool's primaries, in its map's order
	// Cluster is a cluster pool's view of its cluster; nil for other
	// pools.
	Cluster *Cluster
}

// Cluster is what a cluster pool (redis_cluster) knows of its
// cluster and what its redirects cost.
type Cluster struct {
	// Epoch is the current epoch of the slot map's node; Nodes the
	// nodes the pool knows (primaries, replicas, and those met in
	// redirects); SlotsCovered the slots with a primary in the map.
	Epoch        int64
	Nodes        int
	SlotsCovered int
	// MapFrom is the node the map came from, MapAge how long ago
	// (-1 before the first map).
	MapFrom string
	MapAge  time.Duration
	// Refreshes of the map, those where no node gave one
	// (RefreshFailures) and the views refused for an older epoch.
	Refreshes, RefreshFailures, StaleViews int64
	// LastRefreshError is why the last refresh failed ("" when it
	// took a map).
	LastRefreshError string
	// Redirects followed, by kind: MOVED, ASK, TRYAGAIN and CLUSTERDOWN
	// retried; UnsentRetries the requests sent again because their
	// connection failed before they were written; RetriesExhausted the
	// requests whose error went to the client once the retries ran out
	// (cluster_retry_timeout, or 16 redirects).
	Moved, Ask, TryAgain, ClusterDown int64
	UnsentRetries, RetriesExhausted   int64
	// ReplicaFallbacks counts the reads (replica_reads) a replica did
	// not serve, sent to the slot's primary: its call failed, or it
	// answered -LOADING, MOVED, CLUSTERDOWN and the like.
	ReplicaFallbacks int64
}

// Server is one server's counters and state.
type Server struct {
	Name    string // its identity: the name on its line, else host:port (host for port 11211)
	InRing  bool   // keys are placed on it now (an ejected server leaves the ring unless its pool fails fast)
	Ejected bool
	// Down says it is not known to serve: no connection to it or check
	// of it has succeeded yet, or the last one failed (a dial, a check, a
	// connection that broke). The proxy checks each server at start and
	// each server down every second.
	Down bool
	// Addr is where it is dialled now: with sentinels, its master's
	// primary; Failovers counts its moves to another primary.
	Addr      string
	Failovers int64
	// Replicas are where its reads go with replica_reads (those up);
	// none when to Addr.
	Replicas []string

	// PushesDropped counts the RESP3 pushes the server sent where no
	// request waited: dropped, never taken for a reply.
	PushesDropped int64
	// SessionsOpen and SessionsInUse are the session connections (a
	// transaction's, a blocking command's) open and in use now;
	// SessionRefusals counts the sessions refused over server_sessions.
	SessionsOpen, SessionsInUse, SessionRefusals int64

	ServerEOF         int64 // connections the server closed
	ServerErr         int64 // connection errors, failed connects included
	ServerTimedout    int64 // connections closed for a reply's timeout
	ServerConnections int64 // connections now
	Connects          int64 // connections ever made
	ServerEjectedAt   int64 // last ejection, unix microseconds; 0 when never
	Requests          int64 // requests queued for it
	RequestBytes      int64
	Responses         int64 // replies read from it
	ResponseBytes     int64
	InQueue           int // requests waiting to be written
	InQueueBytes      int
	OutQueue          int // requests written, waiting for their replies
	OutQueueBytes     int
	// Latency is the time from each request's enqueueing to its reply.
	Latency Latency
}

// Latency is a histogram of request-to-reply times with fixed buckets.
type Latency struct {
	Bounds  []time.Duration // upper bounds of the buckets but the last, ascending
	Buckets []uint64        // replies per bucket (not cumulative): len(Bounds)+1, the last beyond every bound
	Sum     time.Duration
}

// Count is the number of replies in the histogram.
func (l Latency) Count() uint64 {
	var n uint64
	for _, b := range l.Buckets {
		n += b
	}
	return n
}

// Command is what became of one command's requests. Name comes from
// the proxy's command table (lower case: "get", "mget", "flush_all"), or
// is "unknown": never from a client.
type Command struct {
	Name     string
	Requests int64 // requests read
	// Errors are the requests answered by an error: the server's, the
	// proxy's own (an unknown command, a wrong number of arguments) or
	// a forwarding error (no server, a failed or timed-out call).
	Errors int64
	// Latency is the time from the read that brought each request to
	// the write of its batch's replies, as the client sees it; a request
	// whose batch was not written yet (or never: its client left) is
	// not in it.
	Latency Latency
}
