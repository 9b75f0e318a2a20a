package hashring

// modula is nutcracker's modula distribution: one slot per weight unit of
// each server, servers in nutcracker's name order, and slot = hash % total
// weight.
type modula struct {
	order []int
	cum   []uint64
	total uint64
}

// NewModula returns nutcracker's modula ring over servers. Like nutcracker,
// it lays the weight units out in name order (see the package doc), not in
// configuration order. Weights below 1 count as 1.
func NewModula(servers []Server) Ring {
	order := nutcrackerOrder(servers)
	return &modula{order: order, cum: cumulative(servers, order), total: totalWeight(servers)}
}

// Lookup returns the server owning weight unit hash % total weight.
func (m *modula) Lookup(hash uint32) int {
	if m.total == 0 {
		return -1
	}
	return m.order[ownerOf(m.cum, uint64(hash)%m.total)]
}
