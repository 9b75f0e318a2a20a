package proxy

import (
	"testing"
	"time"
)

func TestRateMeter(t *testing.T) {
	var m rateMeter
	t0 := time.Unix(1_000_000, 0)
	if got := m.perSecond(t0); got != 0 {
		t.Fatalf("empty meter: %v/s", got)
	}
	// 100 events a second for 30 s: the rate is 100 once a whole window
	// has passed, and counts nothing of the current second.
	for s := range 30 {
		m.add(t0.Add(time.Duration(s)*time.Second), 60)
		m.add(t0.Add(time.Duration(s)*time.Second+500*time.Millisecond), 40)
	}
	if got := m.perSecond(t0.Add(30 * time.Second)); got != 100 {
		t.Fatalf("steady 100/s reads %v/s", got)
	}
	m.add(t0.Add(30*time.Second), 1_000_000)
	if got := m.perSecond(t0.Add(30*time.Second + 900*time.Millisecond)); got != 100 {
		t.Fatalf("the current second counted: %v/s", got)
	}
	// A stall: 5 quiet seconds later the window holds seconds 25 to 34,
	// the burst among them; 11 seconds later nothing.
	if got := m.perSecond(t0.Add(35 * time.Second)); got != (5*100+1_000_000)/10.0 {
		t.Fatalf("after 5 quiet seconds: %v/s", got)
	}
	if got := m.perSecond(t0.Add(41 * time.Second)); got != 0 {
		t.Fatalf("after 11 quiet seconds: %v/s, want 0", got)
	}
	// A bucket reused a full cycle later starts from zero.
	m.add(t0.Add(60*time.Second), 7)
	if got := m.perSecond(t0.Add(61 * time.Second)); got != 0.7 {
		t.Fatalf("reused bucket: %v/s, want 0.7", got)
	}
}
