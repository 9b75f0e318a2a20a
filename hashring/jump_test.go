package hashring_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/cespare/xxhash/v2"
	jump "github.com/dgryski/go-jump"

	"github.com/shardproxy/shardproxy/hashring"
)

func servers(weights ...int) []hashring.Server {
	s := make([]hashring.Server, len(weights))
	for i, w := range weights {
		s[i] = hashring.Server{Name: fmt.Sprintf("127.0.0.1:%d", 6400+i), Weight: w}
	}
	return s
}

func TestJumpSlotsAndPick(t *testing.T) {
	p, err := hashring.New(hashring.Config{Distribution: "jump", HashTag: "{}", Servers: servers(1, 2, 1)})
	if err != nil {
		t.Fatal(err)
	}
	table := p.SlotTable()
	for i := 0; i < 2000; i++ {
		key := []byte(fmt.Sprintf("key:%d", i))
		want := int(jump.Hash(xxhash.Sum64(key), 256))
		if got := p.Slot(key); got != want {
			t.Fatalf("Slot(%q) = %d, want %d", key, got, want)
		}
		if got := p.Pick(key); got != table[want] {
			t.Fatalf("Pick(%q) = %d, want table[%d] = %d", key, got, want, table[want])
		}
	}
	a, b := p.Slot([]byte("{user1}:a")), p.Slot([]byte("x{user1}"))
	if a != b || a != p.Slot([]byte("user1")) {
		t.Errorf("tagged keys in slots %d and %d, want the slot of \"user1\"", a, b)
	}
}

func TestExplicitSlotTable(t *testing.T) {
	valid := make([]int, hashring.NumSlots)
	for i := range valid {
		valid[i] = i % 3
	}
	withEntry := func(i, v int) []int { s := slices.Clone(valid); s[i] = v; return s }
	cases := []struct {
		name  string
		dist  string
		slots []int
		ok    bool
	}{
		{"valid", "jump", valid, true},
		{"nil means default", "jump", nil, true},
		{"too short", "jump", valid[:255], false},
		{"too long", "jump", append(slices.Clone(valid), 0), false},
		{"empty", "jump", []int{}, false},
		{"negative index", "jump", withEntry(7, -1), false},
		{"index past servers", "jump", withEntry(255, 3), false},
		{"table with ketama", "ketama", valid, false},
		{"table with modula", "modula", valid, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := hashring.New(hashring.Config{Distribution: c.dist, Servers: servers(1, 1, 1), Slots: c.slots})
			if (err == nil) != c.ok {
				t.Fatalf("New: err = %v, want ok = %v", err, c.ok)
			}
			if err != nil || c.slots == nil {
				return
			}
			if got := p.SlotTable(); !slices.Equal(got, c.slots) {
				t.Errorf("SlotTable differs from the configured table")
			}
		})
	}
}

func TestSlotTableIsACopy(t *testing.T) {
	slots := make([]int, hashring.NumSlots)
	p, err := hashring.New(hashring.Config{Distribution: "jump", Servers: servers(1, 1), Slots: slots})
	if err != nil {
		t.Fatal(err)
	}
	slots[0] = 1
	got := p.SlotTable()
	got[1] = 1
	if again := p.SlotTable(); again[0] != 0 || again[1] != 0 {
		t.Errorf("placement changed through a caller's slice: %v", again[:2])
	}
}
