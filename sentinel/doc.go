// Package sentinel follows Redis masters through a group of Redis
// Sentinels, so that the proxy sends each master's traffic to its current
// address across failovers.
//
// A Watcher keeps one connection per Sentinel subscribed to +switch-master,
// the message a Sentinel publishes when a failover ends (or when it learns
// of one from the other Sentinels), and reports each new address through
// Options.OnSwitch. Messages sent while a subscription is down are lost, so
// each time one is made the Watcher also asks that Sentinel for every
// master (SENTINEL GET-MASTER-ADDR-BY-NAME). Resolve and Settle ask on
// demand; Requery asks in the background, coalesced, for when the proxy
// suspects a master has moved (a failed connection, -READONLY). Each asks
// every Sentinel at once and elects one address from their answers
// (vote.go): one Sentinel alone, lagging, misconfigured or lying, never
// moves a master. A failover's earlier steps are passed on too: the
// replica selected for promotion (Options.OnPromoting) and an abort
// (Options.OnAborted).
//
// Sentinels of a group do not learn of a failover at the same moment: for
// a second or two after one announces the new master, another may still
// name the old one. The Watcher tells them apart by the master's
// config-epoch, which every failover raises and which it asks for with
// each address (SENTINEL MASTER). An answer older than the address last
// reported is not reported; it starts a Requery, whose newest answer
// settles the address.
//
// The package speaks RESP2 over plain TCP with a small reply reader of its
// own (resp.go) and shares no state with the proxy.
package sentinel
