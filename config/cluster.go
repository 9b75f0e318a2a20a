package config

import (
	"errors"
	"time"
)

// DefaultClusterRetryTimeout is how long a cluster pool retries a request
// a cluster cannot serve yet (TRYAGAIN, CLUSTERDOWN, a node that cannot
// be reached before the request was written) before the client gets the
// error: long enough for a replica to take over a failed primary with a
// node timeout of a few seconds.
const DefaultClusterRetryTimeout = 5 * time.Second

// DefaultClusterTimeout is a cluster pool's timeout when the file gives
// none. nutcracker's pools wait for a reply forever by default; in front
// of a cluster that would leave the requests written to a primary that
// hangs (a paused process, a host gone) waiting after the cluster has
// failed over from it, so a cluster pool waits at most this long, as
// cluster-aware clients do with their read timeouts. Blocking commands
// run on session connections, which this does not bound.
const DefaultClusterTimeout = 5 * time.Second

// clusterRules are the rules of a cluster pool (redis_cluster: true): its
// servers are seed nodes, and the cluster, not the file, places keys and
// fails over, so the keys that place keys, eject servers or follow
// Sentinel make no sense there.
func (pp *poolParse) clusterRules() []rule {
	p := pp.pool
	given := func(key string) bool { _, ok := pp.keys[key]; return ok }
	if !p.RedisCluster {
		return []rule{{"cluster_retry_timeout", given("cluster_retry_timeout"), "cluster_retry_timeout needs redis_cluster: true"}}
	}
	unix := false
	for _, s := range p.Servers {
		unix = unix || s.Network == "unix"
	}
	placed := "a cluster places keys itself (CRC16 of the key's {hash tag}, 16384 slots): remove "
	if pp.migrate != nil {
		placed = "a cluster places keys itself (CRC16 of the key's {hash tag}, 16384 slots); " +
			"the old pool's placement goes in migrate_from: remove "
	}
	ejects := "a cluster fails over itself and the proxy follows its slot map, so servers are never ejected: remove "
	return []rule{
		{"redis_cluster", !p.Redis, "redis_cluster needs redis: true"},
		{"servers", unix, "with redis_cluster, servers are TCP seed nodes: cluster nodes announce host and port"},
		{"hash", given("hash"), placed + "hash"},
		{"hash_tag", given("hash_tag"), placed + "hash_tag"},
		{"distribution", given("distribution"), placed + "distribution"},
		{"slots", given("slots"), placed + "slots"},
		{"redis_db", p.RedisDB != 0, "a cluster has only database 0: remove redis_db"},
		{"sentinels", p.Sentinel.Enabled(), "a cluster fails over itself: remove sentinels"},
		{"auto_eject_hosts", p.AutoEjectHosts, ejects + "auto_eject_hosts"},
		{"eject_mode", given("eject_mode"), ejects + "eject_mode"},
		{"server_failure_limit", given("server_failure_limit"), ejects + "server_failure_limit"},
		{"server_retry_timeout", given("server_retry_timeout"), ejects + "server_retry_timeout"},
	}
}

// clusterError is the first rule of a cluster pool that fails, or nil;
// when none fails, a cluster pool without a timeout gets
// DefaultClusterTimeout.
func (pp *poolParse) clusterError() error {
	for _, r := range pp.clusterRules() {
		if r.bad {
			return &Error{Pool: pp.pool.Name, Key: r.key, Line: pp.lineOf(r.key), Err: errors.New(r.msg)}
		}
	}
	if _, given := pp.keys["timeout"]; pp.pool.RedisCluster && !given {
		pp.pool.Timeout = DefaultClusterTimeout
	}
	return nil
}
