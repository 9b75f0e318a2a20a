package stats

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// TestRenderParse renders a snapshot of a Sentinel pool and a cluster
// pool, checks the document's fields by nutcracker's names, and parses it
// back.
func TestRenderParse(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	snap := Snapshot{
		Time:    now,
		Version: "0.1.0",
		Config:  Config{Digest: "d1", Reloads: 2, ReloadFailures: 1, LastReloadError: "bad"},
		Pools: []Pool{
			{Name: "alpha", Redis: true, ClientConnections: 3, ClientAccepted: 5, Requests: 7,
				MigrationStarted: true, MigrationPending: 1, KeysMigrated: 9, MigrationErrors: 0,
				Sentinel: true, SentinelsUp: 2, Sentinels: 3,
				Servers: []Server{{Name: "s1", Addr: "127.0.0.1:7000", Failovers: 1, ServerConnections: 2, Connects: 4,
					Requests: 6, InQueue: 1}}},
			{Name: "beta", Redis: true, Cluster: &Cluster{Epoch: 4, SlotsCovered: 16384, MapAge: -1, Moved: 3},
				Servers: []Server{{Name: "n1", Replicas: []string{"127.0.0.1:7001"}}}},
		},
	}
	b := Render(snap, now.Add(-90*time.Second), "host1")
	if b[len(b)-1] != '\n' {
		t.Errorf("no newline after the document")
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"service": "nutcracker", "source": "host1", "version": "0.5.0", "proxy": "shardproxy 0.1.0",
		"uptime": 90.0, "timestamp": 1.8e9, "curr_connections": 5.0, "total_connections": 9.0,
		"config_digest": "d1", "reloads": 2.0, "reload_failures": 1.0, "reload_error": "bad",
	} {
		if doc[k] != want {
			t.Errorf("%s = %v, want %v", k, doc[k], want)
		}
	}
	alpha := doc["alpha"].(map[string]any)
	for k, want := range map[string]any{
		"client_connections": 3.0, "requests": 7.0, "migration_started": 1.0, "migration_pending": 1.0,
		"keys_migrated": 9.0, "sentinels": 3.0, "sentinels_up": 2.0,
	} {
		if alpha[k] != want {
			t.Errorf("alpha.%s = %v, want %v", k, alpha[k], want)
		}
	}
	s1 := alpha["s1"].(map[string]any)
	if s1["primary"] != "127.0.0.1:7000" || s1["failovers"] != 1.0 || s1["in_queue"] != 1.0 || s1["requests"] != 6.0 {
		t.Errorf("alpha.s1 = %v", s1)
	}
	beta := doc["beta"].(map[string]any)
	if beta["cluster_epoch"] != 4.0 || beta["cluster_map_age_ms"] != -1.0 || beta["cluster_moved"] != 3.0 {
		t.Errorf("beta's cluster fields: %v", beta)
	}
	if r := beta["n1"].(map[string]any)["replicas"]; !reflect.DeepEqual(r, []any{"127.0.0.1:7001"}) {
		t.Errorf("beta.n1.replicas = %v", r)
	}
	if _, ok := beta["sentinels"]; ok {
		t.Errorf("beta has sentinel fields without sentinels")
	}

	parsed, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	a := parsed.Pools["alpha"]
	if parsed.Digest != "d1" || parsed.Reloads != 2 || parsed.ReloadError != "bad" ||
		a.Pending != 1 || a.Moved != 9 || a.Errors != 0 || a.Started == nil || *a.Started != 1 {
		t.Errorf("Parse(Render(...)) = %+v, alpha %+v", parsed, a)
	}
}
