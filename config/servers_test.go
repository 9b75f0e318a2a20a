package config

import (
	"fmt"
	"strings"
	"testing"
)

// jumpPool returns a jump pool with servers shard-a (7001), 127.0.0.1:7002
// and 127.0.0.1 (port 11211), and the given slots lines (starting at line 8).
func jumpPool(slots string) string {
	return "alpha:\n  listen: 127.0.0.1:22121\n  distribution: jump\n  servers:\n" +
		"    - 127.0.0.1:7001:1 shard-a\n    - 127.0.0.1:7002:1\n    - 127.0.0.1:11211:1\n" + slots
}

func TestSlots(t *testing.T) {
	tests := []struct {
		name  string
		slots string
		want  map[int]int // slot -> server index, spot checks
	}{
		{"two halves", "  slots:\n    shard-a: \"0-127\"\n    127.0.0.1:7002: \"128-255\"\n",
			map[int]int{0: 0, 127: 0, 128: 1, 255: 1}},
		{"three servers with lists", "  slots:\n    shard-a: \"0-9, 20-255\"\n    127.0.0.1:7002: \"10-18\"\n    127.0.0.1: \"19\"\n",
			map[int]int{0: 0, 9: 0, 10: 1, 18: 1, 19: 2, 20: 0, 255: 0}},
		{"flow style", "  slots: {shard-a: \"0-254\", 127.0.0.1: 255}\n", map[int]int{0: 0, 254: 0, 255: 2}},
		{"no slots key", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := parsePool1(t, jumpPool(tc.slots))
			if tc.want == nil {
				if p.Slots != nil {
					t.Fatalf("Slots = %v, want nil", p.Slots)
				}
				return
			}
			if len(p.Slots) != SlotCount {
				t.Fatalf("len(Slots) = %d, want %d", len(p.Slots), SlotCount)
			}
			for slot, server := range tc.want {
				if p.Slots[slot] != server {
					t.Errorf("slot %d -> server %d, want %d", slot, p.Slots[slot], server)
				}
			}
		})
	}
}

func TestBadSlots(t *testing.T) {
	tests := []struct {
		name, slots string
		line        int
		want        string
	}{
		{"unknown server", "  slots:\n    shard-z: \"0-255\"\n", 9, `no server with identity "shard-z"`},
		{"address of a named server", "  slots:\n    127.0.0.1:7001: \"0-255\"\n", 9, `no server with identity "127.0.0.1:7001"`},
		{"gap", "  slots:\n    shard-a: \"0-99\"\n    127.0.0.1:7002: \"101-255\"\n", 8, "slots 100 are given to no server"},
		{"tail missing", "  slots:\n    shard-a: \"0-199\"\n", 8, "slots 200-255 are given to no server"},
		{"overlap", "  slots:\n    shard-a: \"0-128\"\n    127.0.0.1:7002: \"128-255\"\n", 10,
			`slot 128 is given to both "shard-a" and "127.0.0.1:7002"`},
		{"overlap within one server", "  slots:\n    shard-a: \"0-255,3\"\n", 9, "slot 3 is given to both"},
		{"out of range", "  slots:\n    shard-a: \"0-256\"\n", 9, "slot 256 is outside 0-255"},
		{"reversed range", "  slots:\n    shard-a: \"255-0\"\n", 9, "start 255 is after end 0"},
		{"word", "  slots:\n    shard-a: \"all\"\n", 9, `"all" is not a slot number`},
		{"empty range", "  slots:\n    shard-a: \"0-127,,128-255\"\n", 9, `bad slot range ""`},
		{"list value", "  slots:\n    shard-a:\n      - 0\n", 10, "want a string of slot ranges"},
		{"slots not a mapping", "  slots: \"0-255\"\n", 8, "want a mapping"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(jumpPool(tc.slots)))
			if err == nil {
				t.Fatalf("no error for\n%s", jumpPool(tc.slots))
			}
			wantError(t, err, "alpha", "slots", tc.line, tc.want)
		})
	}
}

// jumpServers returns a jump pool with one server per weight, named s0, s1,
// ... (the servers key is at line 4), and the given slots lines.
func jumpServers(weights []int, slots string) string {
	var b strings.Builder
	b.WriteString("alpha:\n  listen: 127.0.0.1:22121\n  distribution: jump\n  servers:\n")
	for i, w := range weights {
		fmt.Fprintf(&b, "    - 10.0.%d.%d:6379:%d s%d\n", i/256, i%256, w, i)
	}
	return b.String() + slots
}

func equalWeights(n int) []int {
	w := make([]int, n)
	for i := range w {
		w[i] = 1
	}
	return w
}

func TestJumpServers(t *testing.T) {
	allToS0 := "  slots:\n    s0: \"0-255\"\n"
	tests := []struct {
		name    string
		weights []int
		slots   string
		want    string // error text; "" for none
	}{
		{"256 servers", equalWeights(256), "", ""},
		{"257 servers", equalWeights(257), "", "at most 256 servers (one slot each), not 257"},
		{"257 servers with slots", equalWeights(257), allToS0, "at most 256 servers"},
		{"lightest share above a half", []int{1, 500}, "", ""},
		{"lightest share a half, first in order", []int{1, 511}, "", ""},
		{"lightest share a half, last in order", []int{511, 1}, "",
			`server "s1": weight 1 of total 512 gets none of the 256 slots`},
		{"lightest share below a half", []int{1, 1000}, "", `server "s0": weight 1 of total 1001`},
		{"many light servers", append([]int{1000}, equalWeights(100)...), "", `server "s100"`},
		{"slotless server with slots", []int{1, 1000}, allToS0, ""},
		{"other distribution", equalWeights(300), "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := jumpServers(tc.weights, tc.slots)
			if tc.name == "other distribution" {
				data = strings.Replace(data, "jump", "ketama", 1)
			}
			_, err := Parse([]byte(data))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error for %d servers of weights %v", len(tc.weights), tc.weights[:min(len(tc.weights), 4)])
			}
			wantError(t, err, "alpha", "servers", 4, tc.want)
		})
	}
}
