// Package stats reads the stats JSON a proxy's stats port answers with,
// for the tools that watch a shardproxy from outside: "shardproxy reshard
// --stats" and the bench's reshard section. Package proxy renders the
// document (proxy/stats.go, nutcracker's layout plus shardproxy's
// fields); Document holds the fields its readers use, and the pools that
// report migration counters.
package stats
