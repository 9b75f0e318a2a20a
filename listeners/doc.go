// Package listeners holds the listening sockets of pools: it opens the TCP
// and unix sockets the configuration describes (Open), checks for
// shardproxy -t what opening them would meet (Check), replaces a stale unix
// socket and never any other file, gives a unix socket its permissions
// before a client can connect, and handles the sockets a binary upgrade
// passes from one process to the next (File, Inherited, KeepPath,
// SameAddress). What a pool does with its socket, accepting and handing it
// to another pool on reload, is the proxy's.
package listeners
