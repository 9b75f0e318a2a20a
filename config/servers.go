package config

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
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
