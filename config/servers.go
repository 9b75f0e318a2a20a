package config

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// setServers reads the servers list. Identities must be unique within the
// pool, as in nutcracker (so two unnamed lines with the same host:port are
// an error, whatever their weights).
func setServers(pp *poolParse, v *yaml.Node) error {
	if len(v.Content) == 0 {
		return errors.New("empty servers list")
	}
	seen := map[string]int{}
	servers := make([]Server, 0, len(v.Content))
	for _, item := range v.Content {
		s, err := serverItem(item, seen)
		if err != nil {
			return pp.wrap("servers", item.Line, err)
		}
		servers = append(servers, s)
	}
	pp.pool.Servers = servers
	return nil
}

// serverItem parses one item of the servers list; seen maps the identities
// already given to their lines.
func serverItem(item *yaml.Node, seen map[string]int) (Server, error) {
	if item.Kind != yaml.ScalarNode {
		return Server{}, errors.New("a server must be a single value like \"host:port:weight [name]\"")
	}
	line, err := scalarText(item)
	if err != nil {
		return Server{}, err
	}
	s, err := parseServer(line)
	if err != nil {
		return Server{}, err
	}
	if first, dup := seen[s.Ident]; dup {
		return Server{}, badValue(line, "server %q has the same identity %q as the server at line %d", line, s.Ident, first)
	}
	seen[s.Ident] = item.Line
	return s, nil
}

// slotTable resolves a slots mapping (server identity -> ranges such as
// "0-127,200") into a table of SlotCount server indexes. Every slot must be
// given to exactly one server.
func slotTable(m *yaml.Node, servers []Server) ([]int, error) {
	index := make(map[string]int, len(servers))
	for i, s := range servers {
		index[s.Ident] = i
	}
	table := make([]int, SlotCount)
	for i := range table {
		table[i] = -1
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		si, ok := index[k.Value]
		if k.Kind != yaml.ScalarNode || !ok {
			return nil, &Error{Value: k.Value, Line: k.Line,
				Err: fmt.Errorf("no server with identity %q; identities: %s", k.Value, identList(servers))}
		}
		if v.Kind != yaml.ScalarNode {
			return nil, &Error{Line: v.Line, Err: fmt.Errorf("server %q: want a string of slot ranges like \"0-127\"", k.Value)}
		}
		if err := assignSlots(table, si, servers, v.Value); err != nil {
			err.Line = v.Line
			return nil, err
		}
	}
	if missing := unassigned(table); missing != "" {
		return nil, fmt.Errorf("slots %s are given to no server", missing)
	}
	return table, nil
}

// checkJumpServers refuses a jump pool of more than SlotCount servers and,
// without an explicit slot table, one whose derived table would leave a
// server without a slot (and so without keys).
func checkJumpServers(p *Pool) error {
	if p.Distribution != "jump" {
		return nil
	}
	if len(p.Servers) > SlotCount {
		return fmt.Errorf("distribution jump takes at most %d servers (one slot each), not %d",
			SlotCount, len(p.Servers))
	}
	if i := slotless(p.Servers); i >= 0 && p.Slots == nil {
		total := 0
		for _, s := range p.Servers {
			total += s.Weight
		}
		return badValue(p.Servers[i].Ident, "server %q: weight %d of total %d gets none of the %d slots "+
			"of the derived slot table, so it would hold no key; raise its weight or give the table with the slots key",
			p.Servers[i].Ident, p.Servers[i].Weight, total, SlotCount)
	}
	return nil
}

// slotless returns the index of a server that the slot table hashring
// derives (hashring.SlotQuotas) leaves without a slot, or -1 if every server
// gets one. That table gives the SlotCount slots to the SlotCount highest of
// the claims weight/(k+1/2), k = 0, 1, ..., of every server, equal claims
// going in server order. The last of the lightest servers has the weakest
// first claim, 2*weight; it gets a slot when fewer than SlotCount claims win
// over that one. Server j's claims that do are those with (2k+1)*w < weight_j,
// plus, for j before it, one equal to it.
func slotless(servers []Server) int {
	if len(servers) == 0 {
		return -1
	}
	m := 0
	for i, s := range servers {
		if s.Weight <= servers[m].Weight {
			m = i
		}
	}
	w := uint64(max(servers[m].Weight, 1))
	wins := uint64(0)
	for j, s := range servers {
		wj := uint64(max(s.Weight, 1))
		if j == m {
			continue
		}
		wins += ((wj-1)/w + 1) / 2 // odd multiples of w below wj
		if j < m && wj%w == 0 && wj/w%2 == 1 {
			wins++
		}
		if wins >= SlotCount {
			return m
		}
	}
	return -1
}

// assignSlots gives the slots in ranges (comma-separated "a-b" or "a") to
// server si.
func assignSlots(table []int, si int, servers []Server, ranges string) *Error {
	for _, part := range strings.Split(ranges, ",") {
		lo, hi, err := slotRange(strings.TrimSpace(part))
		if err != nil {
			return badValue(ranges, "server %q: bad slot range %q in %q: %v", servers[si].Ident, part, ranges, err)
		}
		for slot := lo; slot <= hi; slot++ {
			if prev := table[slot]; prev >= 0 {
				return badValue(ranges, "slot %d is given to both %q and %q", slot, servers[prev].Ident, servers[si].Ident)
			}
			table[slot] = si
		}
	}
	return nil
}

// slotRange parses "a-b" or "a" into an inclusive range of slots.
func slotRange(s string) (lo, hi int, err error) {
	loText, hiText, isRange := strings.Cut(s, "-")
	if !isRange {
		hiText = loText
	}
	lo, errLo := slotNumber(strings.TrimSpace(loText))
	hi, errHi := slotNumber(strings.TrimSpace(hiText))
	if err := errors.Join(errLo, errHi); err != nil {
		return 0, 0, err
	}
	if lo > hi {
		return 0, 0, fmt.Errorf("start %d is after end %d", lo, hi)
	}
	return lo, hi, nil
}

func slotNumber(s string) (int, error) {
	if !isDigits(s) {
		return 0, fmt.Errorf("%q is not a slot number", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n >= SlotCount {
		return 0, fmt.Errorf("slot %s is outside 0-%d", s, SlotCount-1)
	}
	return n, nil
}

// unassigned describes the slots no server has, such as "3-5, 9", or "".
func unassigned(table []int) string {
	var parts []string
	for i := 0; i < len(table); i++ {
		if table[i] >= 0 {
			continue
		}
		j := i
		for j+1 < len(table) && table[j+1] < 0 {
			j++
		}
		if i == j {
			parts = append(parts, strconv.Itoa(i))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", i, j))
		}
		i = j
	}
	return strings.Join(parts, ", ")
}

func identList(servers []Server) string {
	ids := make([]string, len(servers))
	for i, s := range servers {
		ids[i] = strconv.Quote(s.Ident)
	}
	sort.Strings(ids)
	return strings.Join(ids, ", ")
}
