// Package cluster knows Redis Cluster for a proxy in front of one: the
// slot map (which node serves each of the 16384 slots, and its replicas,
// as CLUSTER SLOTS answers it), the replies that send a request elsewhere
// (MOVED, ASK, TRYAGAIN, CLUSTERDOWN), and a Topology that keeps the map
// fresh. It does no I/O of its own: a Topology asks nodes through the
// Fetch its user gives.
package cluster
