// Package metrics serves shardproxy's Prometheus metrics, liveness and
// readiness on one HTTP listener (--metrics-addr):
//
//   - /metrics: the counters of the stats JSON per pool and per server,
//     requests, errors and the client's latency histogram per command,
//     ejection and down state, reload counters, each server's
//     request-to-reply latency histogram, a cluster pool's slot map,
//     refreshes and redirects (shardproxy_cluster_*, cluster.go), and the
//     Go runtime's and the process's metrics;
//   - /healthz: 200 "ok" while the process serves HTTP;
//   - /readyz: 200 when every pool is ready (stats.Pool.Ready),
//     else 503; the body has one line per pool with its state;
//   - /readyz/<pool>: the same for one pool, for a load balancer in front
//     of it: 200 when ready, 503 with the reason, 404 for no such pool.
//
// The proxy keeps its own counters (atomics on the hot path); the
// collector reads them at scrape time, as a stats.Snapshot from the
// proxy's Snapshot method, and turns them into constant metrics, so nothing in package proxy or below
// imports the Prometheus client. Label values are pool and server names
// from the configuration, command names from the proxy's command table
// ("unknown" for any other) and the configuration's digest: never bytes a
// client sent.
package metrics
