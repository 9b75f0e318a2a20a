package migration

import (
	"testing"
	"time"
)

// TestMigrationBegin: a migration with a start time has not started
// before it, starts at it, and stays started when the clock steps back;
// one without a start time has started from the beginning.
func TestMigrationBegin(t *testing.T) {
	at := time.Date(2026, 11, 30, 10, 30, 0, 0, time.UTC)
	m := newState(2, false)
	steps := []struct {
		name string
		now  time.Time
		want bool
	}{
		{"a second before", at.Add(-time.Second), false},
		{"a nanosecond before", at.Add(-time.Nanosecond), false},
		{"at start_at", at, true},
		{"the clock stepped back an hour", at.Add(-time.Hour), true},
	}
	for _, st := range steps {
		if got := m.begin(at, st.now); got != st.want {
			t.Errorf("%s: begin %v, want %v", st.name, got, st.want)
		}
	}
	if !newState(2, true).begin(at, at.Add(-time.Hour)) {
		t.Error("a migration without start_at: begin false before the (unused) start time")
	}
}
