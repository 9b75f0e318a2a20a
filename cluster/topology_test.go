package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/codec/resp"
)

// fakeNodes answers Fetch for a set of addresses: each node's epoch and
// the primary it names for every slot; a node missing from the map does
// not answer.
type fakeNodes struct {
	mu    sync.Mutex
	epoch map[string]int64
	owner map[string]string // node -> the primary it says serves all slots
	asked map[string]int
}

func newFakeNodes() *fakeNodes {
	return &fakeNodes{epoch: map[string]int64{}, owner: map[string]string{}, asked: map[string]int{}}
}

func (f *fakeNodes) set(addr string, epoch int64, owner string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.epoch[addr], f.owner[addr] = epoch, owner
}

func (f *fakeNodes) fetch(_ context.Context, addr string) ([]byte, []byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked[addr]++
	epoch, ok := f.epoch[addr]
	if !ok {
		return nil, nil, errors.New("connection refused")
	}
	info := fmt.Sprintf("cluster_state:ok\r\ncluster_current_epoch:%d\r\ncluster_my_epoch:1\r\n", epoch)
	host, port, _ := strings.Cut(f.owner[addr], ":")
	slots := resp.AppendArray(nil, 1)
	slots = resp.AppendArray(slots, 3)
	slots = resp.AppendInt(slots, 0)
	slots = resp.AppendInt(slots, 16383)
	slots = resp.AppendArray(slots, 3)
	slots = resp.AppendBulkString(slots, host)
	var p int64
	fmt.Sscan(port, &p)
	slots = resp.AppendInt(slots, p)
	slots = resp.AppendBulkString(slots, "id-"+f.owner[addr])
	return resp.AppendBulkString(nil, info), slots, nil
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// taken collects the views a Topology applies.
type taken struct {
	mu    sync.Mutex
	views []*View
}

func (tk *taken) apply(v *View) {
	tk.mu.Lock()
	tk.views = append(tk.views, v)
	tk.mu.Unlock()
}

func (tk *taken) last() *View {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	if len(tk.views) == 0 {
		return nil
	}
	return tk.views[len(tk.views)-1]
}

// TestTopologyRefusesOlderEpoch: once a view of epoch 5 is taken, a node
// still at epoch 3 (cut off from the majority, say) is refused while
// another node gives epoch 5 or more; only when no node has better, three
// refreshes in a row, is the old epoch taken (a cluster made again).
func TestTopologyRefusesOlderEpoch(t *testing.T) {
	f := newFakeNodes()
	f.set("a:1", 5, "a:1")
	tk := &taken{}
	topo := NewTopology([]string{"a:1"}, f.fetch, tk.apply, Options{}, quiet())
	ctx := context.Background()
	topo.refresh(ctx)
	if v := tk.last(); v == nil || v.Epoch != 5 || v.Map.Shards[0].Primary.Addr != "a:1" {
		t.Fatalf("first view: %+v", v)
	}
	// a's own map names b:2 as the primary now; b answers too.
	f.set("a:1", 3, "old:9")
	f.set("b:2", 6, "b:2")
	topo.SetSeeds([]string{"a:1", "b:2"})
	topo.refresh(ctx)
	if v := tk.last(); v.Epoch != 6 || v.From != "b:2" {
		t.Fatalf("want b's view of epoch 6, got %d from %s", v.Epoch, v.From)
	}
	if topo.Stale.Load() != 1 {
		t.Fatalf("stale views: %d, want 1", topo.Stale.Load())
	}
	// Every node goes back to epoch 2: refused twice, taken the third time.
	f.set("a:1", 2, "a:1")
	f.set("b:2", 2, "a:1")
	for i := range staleAccept {
		n := len(tk.views)
		topo.refresh(ctx)
		if got := len(tk.views) - n; (i < staleAccept-1) != (got == 0) {
			t.Fatalf("refresh %d of old epochs: %d views taken", i+1, got)
		}
	}
	if v := tk.last(); v.Epoch != 2 {
		t.Fatalf("after %d refreshes of old epochs: epoch %d", staleAccept, v.Epoch)
	}
	if _, err := topo.Last(); err != nil {
		t.Fatalf("last error after a view was taken: %v", err)
	}
}

// TestTopologySpreadsAndFallsBack: refreshes start from the next known
// node each time, so none takes them all; with every known node down,
// the seeds are asked; with no node answering, the error says why.
func TestTopologySpreadsAndFallsBack(t *testing.T) {
	f := newFakeNodes()
	f.set("seed:1", 1, "a:1")
	tk := &taken{}
	topo := NewTopology([]string{"seed:1"}, f.fetch, tk.apply, Options{}, quiet())
	ctx := context.Background()
	topo.refresh(ctx) // known: a:1 only (its map has one shard)
	f.set("a:1", 1, "a:1")
	for range 4 {
		topo.refresh(ctx)
	}
	if f.asked["a:1"] != 4 || f.asked["seed:1"] != 1 {
		t.Fatalf("asked %v: want a:1 4 times, the seed once", f.asked)
	}
	f.mu.Lock()
	delete(f.epoch, "a:1")
	f.mu.Unlock()
	topo.refresh(ctx)
	if f.asked["seed:1"] != 2 || tk.last().From != "seed:1" {
		t.Fatalf("with a:1 down: asked %v, view from %s", f.asked, tk.last().From)
	}
	f.mu.Lock()
	delete(f.epoch, "seed:1")
	f.mu.Unlock()
	topo.refresh(ctx)
	_, err := topo.Last()
	if err == nil || !strings.Contains(err.Error(), "connection refused") || topo.Failures.Load() != 1 {
		t.Fatalf("no node answers: err %v, failures %d", err, topo.Failures.Load())
	}
}

// TestTopologyCoalesces: a thousand Refresh calls while it runs make a
// handful of refreshes, at most one per MinGap.
func TestTopologyCoalesces(t *testing.T) {
	f := newFakeNodes()
	f.set("a:1", 1, "a:1")
	tk := &taken{}
	topo := NewTopology([]string{"a:1"}, f.fetch, tk.apply, Options{MinGap: 50 * time.Millisecond, Period: time.Hour}, quiet())
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		topo.Run(done)
		close(ended)
	}()
	start := time.Now()
	for time.Since(start) < 500*time.Millisecond {
		topo.Refresh()
		time.Sleep(500 * time.Microsecond)
	}
	close(done)
	<-ended
	n := topo.Refreshes.Load()
	if limit := int64(time.Since(start)/(50*time.Millisecond)) + 2; n < 2 || n > limit {
		t.Fatalf("%d refreshes in %v, want 2..%d", n, time.Since(start), limit)
	}
}

func TestCurrentEpoch(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{bulk("cluster_state:ok\r\ncluster_current_epoch:17\r\nother:1\r\n"), 17, true},
		{bulk("cluster_current_epoch:0\r\n"), 0, true},
		{bulk("cluster_x:1\r\n"), 0, false},
		{"-ERR This instance has cluster support disabled\r\n", 0, false},
		{":1\r\n", 0, false},
	} {
		got, err := CurrentEpoch([]byte(c.in))
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("%q: %d %v", c.in, got, err)
		}
	}
}

func bulk(s string) string { return string(resp.AppendBulkString(nil, s)) }
