package pools_test

import (
	"errors"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/pools"
)

// TestLatencyCountsReplies checks that a server's latency histogram has one
// entry per reply (its count is the server's responses), none for a call
// and that a reply delayed by the server lands in a bucket at least as slow
// as the delay.
func TestLatencyCountsReplies(t *testing.T) {
	srv := testservers.Redis(t)
	s := pools.NewServer(redisOptions(srv.Addr))
	defer s.Close()
	send(t, s, 1, command("SET", "k", "v"), command("GET", "k"), command("PING"))
	before := s.Stats.Latency.Snapshot()
	// A reply that takes 60 ms or more: the server is paused meanwhile.
	srv.Stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(60 * time.Millisecond)
		srv.Continue()
	}()
	send(t, s, 1, command("PING"))
	<-done
	lat := s.Stats.Latency.Snapshot()
	if got, want := lat.Count(), uint64(s.Stats.Responses.Load()); got != want || got != 4 {
		t.Fatalf("latency count %d, responses %d; want 4 of each", got, want)
	}
	bounds := pools.LatencyBounds()
	if len(bounds)+1 != pools.LatencyBuckets {
		t.Fatalf("%d bounds for %d buckets", len(bounds), pools.LatencyBuckets)
	}
	// The paused reply, the one added since before, is in a bucket whose
	// bound is 50 ms or more (the others may be too on a busy machine).
	slow, added := 0, 0
	for i, n := range lat.Buckets {
		d := int(n - before.Buckets[i])
		added += d
		if i == len(bounds) || bounds[i] >= 50*time.Millisecond {
			slow += d
		}
	}
	if slow != 1 || added != 1 {
		t.Errorf("the paused reply: %d added, %d in the buckets of 50 ms and more, want 1 of each (buckets %v, before %v)",
			added, slow, lat.Buckets, before.Buckets)
	}
	if lat.Sum < 60*time.Millisecond {
		t.Errorf("latency sum %v, want at least the 60 ms of the pause", lat.Sum)
	}
}

// TestLatencyBoundsAscend checks the buckets' bounds: ascending, from
// 100 µs to 5 s.
func TestLatencyBoundsAscend(t *testing.T) {
	b := pools.LatencyBounds()
	if b[0] != 100*time.Microsecond || b[len(b)-1] != 5*time.Second {
		t.Errorf("bounds from %v to %v, want 100µs to 5s", b[0], b[len(b)-1])
	}
	for i := 1; i < len(b); i++ {
		if b[i] <= b[i-1] {
			t.Errorf("bound %d (%v) not above bound %d (%v)", i, b[i], i-1, b[i-1])
		}
	}
}

// TestDown checks Down: false before a dial, true after a refused one and
// after the server closed the connection, false again once a dial succeeds.
func TestDown(t *testing.T) {
	srv := testservers.Redis(t)
	s := pools.NewServer(redisOptions(srv.Addr))
	defer s.Close()
	if s.Down() {
		t.Fatal("down before any dial")
	}
	send(t, s, 1, command("PING"))
	if s.Down() {
		t.Fatal("down after a reply")
	}
	srv.Kill()
	calls := send(t, s, 1, command("PING"))
	if !errors.Is(calls[0].Err, pools.ErrUnavailable) {
		t.Fatalf("PING to a killed server: err %v", calls[0].Err)
	}
	if !s.Down() {
		t.Fatal("not down after the server was killed")
	}
	srv.Restart()
	if calls := send(t, s, 1, command("PING")); calls[0].Err != nil {
		t.Fatalf("PING after restart: %v", calls[0].Err)
	}
	if s.Down() {
		t.Fatal("still down after a successful dial")
	}
}
