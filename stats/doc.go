// Package stats is a proxy's counters and state as plain values, and the
// stats document they make: nutcracker's JSON layout plus shardproxy's
// fields.
//
// A Snapshot (snapshot.go) is what package proxy reads from its atomic
// counters at one moment: the configuration's reloads, and per pool its
// client and forwarding counters, its commands, its servers and, for a
// cluster pool, its slot map. Render (render.go) writes the document the
// stats port answers with; package metrics exports the same values to
// Prometheus, and serves Pool.Ready (ready.go), the readiness rule, on
// /readyz.
//
// Read and Parse (document.go) go the other way, for the tools that watch
// a shardproxy from outside: "shardproxy reshard --stats" and the bench's
// reshard section. A Document holds the fields those readers use, and the
// pools that report migration counters.
package stats
