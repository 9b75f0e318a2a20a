// Package cluster knows Redis Cluster for a proxy in front of one: the
// slot map (which node serves each of the 16384 slots, and its replicas,
// as CLUSTER SLOTS answers it), the replies that send a request elsewhere
// (MOVED, ASK, TRYAGAIN, CLUSTERDOWN), a Topology that keeps the map
// fresh, and a Keeper of a cluster pool's nodes.
//
// A Topology does no I/O of its own: it asks nodes through the Fetch its
// user gives. The Keeper gives it one: it holds a pools.Server per node
// (made on first use, retired once out of the map and unused for a
// minute) and asks CLUSTER INFO and CLUSTER SLOTS on their connections.
// It sits beside the request path: it hands each map it takes, with the
// servers of its nodes (a ServerMap), to the pool through the small Pool
// interface package proxy fills in, which makes it the pool's routing;
// the request path only asks that routing. ServerMap.Patch makes the
// map a MOVED says, and the Keeper holds the counters of redirects and
// retries the pool's requests cost.
package cluster
