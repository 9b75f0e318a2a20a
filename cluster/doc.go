// Package cluster reads a Redis Cluster's slot map: which node serves
// each of the 16384 slots, and its replicas, as CLUSTER SLOTS answers it.
// It is the ground a cluster pool's routing stands on; it does no I/O.
package cluster
