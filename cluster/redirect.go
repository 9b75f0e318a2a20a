package cluster

import (
	"bytes"
	"net"
	"strconv"
)

// Reply kinds of a cluster node that say a request did not run there,
// so the proxy sends it again (see Classify).
const (
	// Served: any other reply; the request ran (or failed for itself).
	Served = iota
	// Moved: -MOVED slot host:port; the slot lives there now.
	Moved
	// Ask: -ASK slot host:port; this one request goes there, after
	// ASKING, while the slot migrates.
	Ask
	// TryAgain: -TRYAGAIN; a multi-key request whose keys are split
	// between the two nodes of a migrating slot, for now.
	TryAgain
	// Down: -CLUSTERDOWN; the cluster cannot serve the slot now (a
	// primary failed and no replica took over yet).
	Down
)

// KindName names the kinds of Classify for stats: "moved", "ask",
// "tryagain", "clusterdown"; "" for Served.
func KindName(kind int) string {
	switch kind {
	case Moved:
		return "moved"
	case Ask:
		return "ask"
	case TryAgain:
		return "tryagain"
	case Down:
		return "clusterdown"
	}
	return ""
}

// Classify reads a node's reply. For Moved and Ask it returns where to
// go: addr is host:port, with hostOf as the host when the node left it
// out (":port" or "?:port", a node that does not know its own address).
func Classify(reply []byte, hostOf string) (kind int, slot int, addr string) {
	if len(reply) < 4 || reply[0] != '-' {
		return Served, 0, ""
	}
	line := reply[1:]
	if i := bytes.IndexByte(line, '\r'); i >= 0 {
		line = line[:i]
	}
	switch {
	case bytes.HasPrefix(line, []byte("MOVED ")):
		kind, line = Moved, line[6:]
	case bytes.HasPrefix(line, []byte("ASK ")):
		kind, line = Ask, line[4:]
	case bytes.HasPrefix(line, []byte("TRYAGAIN")):
		return TryAgain, 0, ""
	case bytes.HasPrefix(line, []byte("CLUSTERDOWN")):
		return Down, 0, ""
	default:
		return Served, 0, ""
	}
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		return Served, 0, ""
	}
	slot, err := strconv.Atoi(string(line[:sp]))
	if err != nil || slot < 0 || slot >= len(Map{}.Slots) {
		return Served, 0, ""
	}
	host, port, err := net.SplitHostPort(string(line[sp+1:]))
	if err != nil || port == "" {
		return Served, 0, ""
	}
	if host == "" || host == "?" {
		host = hostOf
	}
	return kind, slot, net.JoinHostPort(host, port)
}
