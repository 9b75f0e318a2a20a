package commands

import "testing"

// TestCommandIDs checks the rows' IDs: every row of the table has its own,
// 1 to Len(), and All yields the rows in their order; Lookup finds each
// row by its name in any case.
func TestCommandIDs(t *testing.T) {
	seen := map[uint16]string{}
	for name, c := range table {
		if c.ID == 0 || int(c.ID) > Len() {
			t.Errorf("%s: id %d outside 1..%d", name, c.ID, Len())
			continue
		}
		if other, dup := seen[c.ID]; dup {
			t.Errorf("%s and %s share id %d", name, other, c.ID)
		}
		seen[c.ID] = name
	}
	n := 0
	for c := range All() {
		n++
		if int(c.ID) != n {
			t.Errorf("All: %s, id %d, at %d", c.Name, c.ID, n)
		}
	}
	if n != Len() || Len() != len(table) {
		t.Errorf("All yields %d rows, Len is %d, the table has %d", n, Len(), len(table))
	}
	for _, name := range []string{"GET", "get", "GeoRadius_RO"} {
		if c := Lookup([]byte(name)); c == nil || !upperEqual(c.Name, []byte(name)) {
			t.Errorf("Lookup(%q) = %v", name, c)
		}
	}
	if c := Lookup([]byte("NOSUCHCOMMAND")); c != nil {
		t.Errorf("Lookup(NOSUCHCOMMAND) = %v", c)
	}
}
