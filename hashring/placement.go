package hashring

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Distribution names accepted in [Config.Distribution].
const (
	DistKetama = "ketama"
	DistModula = "modula"
	DistRandom = "random"
	DistJump   = "jump"
)

// Defaults nutcracker applies when a pool does not name them.
const (
	DefaultHash         = "fnv1a_64"
	DefaultDistribution = DistKetama
)

// DistributionNames lists the accepted distribution names.
var DistributionNames = []string{DistKetama, DistModula, DistRandom, DistJump}

// maxTotalWeight bounds the summed weight of a pool: nutcracker keeps it in a
// uint32, and jump.Hash takes an int32 bucket count.
const maxTotalWeight = math.MaxInt32

// Config describes a pool's placement.
type Config struct {
	// Hash is a name from HashNames; empty means DefaultHash. The "jump"
	// distribution always hashes with xxhash, but a non-empty Hash must
	// still be a known name.
	Hash string
	// HashTag is empty or exactly two bytes, such as "{}".
	HashTag string
	// Distribution is a name from DistributionNames; empty means
	// DefaultDistribution.
	Distribution string
	// Servers in configuration order. Names must be non-empty and unique,
	// weights at least 1.
	Servers []Server
	// Slots, for Distribution "jump" only, is an explicit slot table: NumSlots
	// entries, each an index into Servers. Nil means DefaultSlotTable, which
	// must give every server a slot. At most NumSlots servers either way.
	Slots []int
}

// Placement bundles hash function, hash tag, distribution and ring: it is what
// the proxy asks, per request, for a key's server. It is immutable after New
// and safe for concurrent use.
type Placement struct {
	n     int
	hash  HashFunc // nil for random and jump
	tag   string
	ring  Ring  // nil for jump
	slots []int // NumSlots entries for jump, else nil
}

// New validates c and builds its placement.
func New(c Config) (*Placement, error) {
	if c.Hash == "" {
		c.Hash = DefaultHash
	}
	if c.Distribution == "" {
		c.Distribution = DefaultDistribution
	}
	hash, err := Hash(c.Hash)
	if err != nil {
		return nil, err
	}
	if c.HashTag != "" && len(c.HashTag) != 2 {
		return nil, fmt.Errorf("hashring: hash tag %q: want two bytes", c.HashTag)
	}
	if err := validateServers(c.Servers); err != nil {
		return nil, err
	}
	if c.Slots != nil && c.Distribution != DistJump {
		return nil, fmt.Errorf("hashring: slot table given for distribution %q, only %q uses one",
			c.Distribution, DistJump)
	}
	p := &Placement{n: len(c.Servers), hash: hash, tag: c.HashTag}
	switch c.Distribution {
	case DistKetama:
		p.ring = NewKetama(c.Servers)
	case DistModula:
		p.ring = NewModula(c.Servers)
	case DistRandom:
		p.ring, p.hash = NewRandom(c.Servers), nil
	case DistJump:
		p.hash = nil
		if p.slots, err = slotTable(c.Slots, c.Servers); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("hashring: unknown distribution %q (known: %v)", c.Distribution, DistributionNames)
	}
	return p, nil
}

// validateServers checks names and weights the way nutcracker's
// configuration check does, and bounds the total weight.
func validateServers(servers []Server) error {
	seen := make(map[string]int, len(servers))
	var total uint64
	for i, s := range servers {
		if s.Name == "" {
			return fmt.Errorf("hashring: server %d: empty name", i)
		}
		if j, dup := seen[s.Name]; dup {
			return fmt.Errorf("hashring: servers %d and %d: same name %q", j, i, s.Name)
		}
		seen[s.Name] = i
		if s.Weight < 1 {
			return fmt.Errorf("hashring: server %d (%q): weight %d, want at least 1", i, s.Name, s.Weight)
		}
		total += uint64(s.Weight)
		if total > maxTotalWeight {
			return fmt.Errorf("hashring: total weight exceeds %d at server %d (%q)", maxTotalWeight, i, s.Name)
		}
	}
	return nil
}

// errSlotTable is wrapped by every invalid explicit slot table error.
var errSlotTable = errors.New("invalid slot table")

// slotTable returns a private copy of the explicit table after checking it,
// or the default table when explicit is nil. A pool of more than NumSlots
// servers is refused either way, and a default table only when every server
// gets a slot in it.
func slotTable(explicit []int, servers []Server) ([]int, error) {
	if len(servers) > NumSlots {
		return nil, fmt.Errorf("hashring: %w: %d servers, at most %d (one slot each)",
			errSlotTable, len(servers), NumSlots)
	}
	if explicit == nil {
		table := DefaultSlotTable(servers)
		if i := slotless(table, len(servers)); i >= 0 {
			return nil, fmt.Errorf("hashring: %w: server %d (%q): weight %d of total %d gets none of the %d slots",
				errSlotTable, i, servers[i].Name, servers[i].Weight, totalWeight(servers), NumSlots)
		}
		return table, nil
	}
	if len(explicit) != NumSlots {
		return nil, fmt.Errorf("hashring: %w: %d entries, want %d", errSlotTable, len(explicit), NumSlots)
	}
	for s, idx := range explicit {
		if idx < 0 || idx >= len(servers) {
			return nil, fmt.Errorf("hashring: %w: slot %d: server index %d, want 0..%d",
				errSlotTable, s, idx, len(servers)-1)
		}
	}
	return append([]int(nil), explicit...), nil
}

// slotless returns the first of n servers that holds no slot in table, or
// -1 when each holds one.
func slotless(table []int, n int) int {
	held := make([]bool, n)
	for _, i := range table {
		if i >= 0 {
			held[i] = true
		}
	}
	return slices.Index(held, false)
}

// Pick returns the index of key's server, -1 when the pool has no server, and
// 0 without hashing when it has one. It does not allocate.
func (p *Placement) Pick(key []byte) int {
	switch {
	case p.n == 0:
		return -1
	case p.n == 1:
		return 0
	case p.slots != nil:
		return p.slots[slotOf(HashKey(key, p.tag))]
	}
	var h uint32
	if k := HashKey(key, p.tag); len(k) > 0 && p.hash != nil {
		h = p.hash(k)
	}
	return p.ring.Lookup(h)
}

// Slot returns key's slot, 0..NumSlots-1, for distribution "jump", and -1 for
// every other distribution.
func (p *Placement) Slot(key []byte) int {
	if p.slots == nil {
		return -1
	}
	return slotOf(HashKey(key, p.tag))
}

// SlotTable returns a copy of the slot table (NumSlots entries, slot -> server
// index) for distribution "jump", and nil for every other distribution.
func (p *Placement) SlotTable() []int {
	if p.slots == nil {
		return nil
	}
	return append([]int(nil), p.slots...)
}
