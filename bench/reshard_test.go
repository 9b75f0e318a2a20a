//go:build linux

package main

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/stats"
)

// TestReshardConfig parses the two configs the section writes with the
// proxy's own config package: the old pool, then the new one migrating
// from it.
func TestReshardConfig(t *testing.T) {
	ports := []int{7001, 7002, 7003, 7004}
	old, err := config.Parse([]byte(reshardConfig("127.0.0.1:7000", ports[:3], nil)))
	if err != nil {
		t.Fatalf("old config: %v", err)
	}
	p := old.Pools[0]
	if p.Name != reshardPool || !p.Redis || p.Distribution != "jump" || len(p.Servers) != 3 || p.MigrateFrom != nil {
		t.Errorf("old pool: %s redis %t %s, %d servers, migrate_from %v", p.Name, p.Redis, p.Distribution, len(p.Servers), p.MigrateFrom)
	}
	text := reshardConfig("127.0.0.1:7000", ports, ports[:3])
	cfg, err := config.Parse([]byte(text))
	if err != nil {
		t.Fatalf("new config: %v\n%s", err, text)
	}
	p = cfg.Pools[0]
	if len(p.Servers) != 4 || p.Servers[3].Addr != "127.0.0.1:7004" || p.Servers[3].Name != "d" {
		t.Errorf("new pool servers: %+v", p.Servers)
	}
	if p.MigrateFrom == nil || len(p.MigrateFrom.Servers) != 3 || p.MigrateRate != reshardRate {
		t.Fatalf("migration: %+v, rate %d\n%s", p.MigrateFrom, p.MigrateRate, text)
	}
	for i, s := range p.MigrateFrom.Servers {
		if s != p.Servers[i] {
			t.Errorf("old server %d is %+v, want the pool's %+v", i, s, p.Servers[i])
		}
	}
}

func TestAppendCommand(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"no key", appendCommand(nil, -1, nil, "DBSIZE"), "*1\r\n$6\r\nDBSIZE\r\n"},
		{"get", appendCommand(nil, 42, nil, "GET"), "*2\r\n$3\r\nGET\r\n$6\r\nkey:42\r\n"},
		{"set", appendCommand([]byte("x"), 0, []byte("ab"), "SET"), "x*3\r\n$3\r\nSET\r\n$5\r\nkey:0\r\n$2\r\nab\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if string(tc.got) != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var d []time.Duration
		for _, x := range v {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name string
		lat  []time.Duration
		q    float64
		want float64
	}{
		{"none", nil, 0.99, 0},
		{"one", ms(7), 0.5, 7},
		{"median of four is the second", ms(1, 2, 3, 4), 0.5, 2},
		{"p99 of 100", ms(hundred...), 0.99, 99},
		{"p50 of 100", ms(hundred...), 0.50, 50},
		{"p99 of 10 is the largest", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 0.99, 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.lat, tc.q); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	lat := []time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond}
	r := summarize(lat, 2*time.Second)
	if r.ops != 4 || r.rps != 2 || r.p50 != 2 || r.p99 != 4 {
		t.Errorf("got %+v, want 4 ops, 2 rps, p50 2, p99 4", r)
	}
	if r := summarize(nil, 0); r.ops != 0 || r.rps != 0 {
		t.Errorf("empty: %+v", r)
	}
}

func TestArrived(t *testing.T) {
	tests := []struct {
		name          string
		before, after []int64
		want          int64
	}{
		{"onto a new server", []int64{10, 10, 10, 0}, []int64{8, 7, 8, 7}, 7},
		{"between old servers too", []int64{10, 10, 10, 0}, []int64{12, 5, 8, 5}, 7},
		{"nothing moved", []int64{10, 10, 10, 0}, []int64{10, 10, 10, 0}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := arrived(tc.before, tc.after); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestParseProxyStats(t *testing.T) {
	good := `{"service":"nutcracker","reloads":2,"reload_failures":1,"reload_error":"bad",` +
		`"reshard":{"requests":5,"migration_pending":3,"keys_migrated":40,"migration_errors":1,"a":{"requests":1}}}`
	s, err := parseProxyStats([]byte(good))
	want := stats.Migration{Pending: 3, Moved: 40, Errors: 1}
	if err != nil || s.Reloads != 2 || s.ReloadFailures != 1 || s.ReloadError != "bad" || s.Pool != want {
		t.Errorf("got %+v, %v; want %+v", s, err, want)
	}
	for name, doc := range map[string]string{
		"no pool":            `{"reloads":0}`,
		"no migration stats": `{"reshard":{"requests":5}}`,
		"not JSON":           `reshard`,
	} {
		if _, err := parseProxyStats([]byte(doc)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestRenderReshard(t *testing.T) {
	runs := []reshardRun{
		{label: "alone", keys: 1000, moved: 250, counted: 250, took: 500 * time.Millisecond},
		{label: "loaded", withLoad: true, keys: 1000, moved: 250, counted: 252, took: time.Second,
			before: loadResult{ops: 10, rps: 2000, p50: 0.5, p99: 2}, during: loadResult{ops: 10, rps: 1000, p50: 1, p99: 5}},
		{label: "broken", withLoad: true, keys: 1000, err: errors.New("x")},
	}
	want := [][]string{
		{"alone", "1000", "250", "250", "0.50", "500", "-", "-", "-", "-", "-", "-"},
		{"loaded", "1000", "250", "252", "1.00", "250", "1000", "1.000", "5.000", "2000", "2.000", "2.50"},
		{"broken", "1000", "ERR", "ERR", "ERR", "ERR", "-", "-", "-", "-", "-", "-"},
	}
	text := renderReshard("T", runs)
	for i, w := range want {
		line := ""
		for _, l := range strings.Split(text, "\n") {
			if strings.HasPrefix(l, "| "+w[0]+" ") {
				line = l
			}
		}
		if got := cols(line); strings.Join(got, ",") != strings.Join(w, ",") {
			t.Errorf("row %d: got %q, want %q", i, got, w)
		}
	}
}

// TestReshardSection runs the section in quick mode against real
// redis-servers and a shardproxy built from this module, and with a
// nutcracker standing in, which it must not measure.
func TestReshardSection(t *testing.T) {
	testservers.Need(t, "redis-server")
	if testing.Short() {
		t.Skip("starts servers and migrates 20000 keys twice")
	}
	p, err := newProcs()
	if err != nil {
		t.Fatal(err)
	}
	defer p.stopAll()
	bin, err := buildProxy(context.Background(), p.dir)
	if err != nil {
		t.Fatal(err)
	}
	o := &options{quick: true, proxyBin: bin, proxyFlags: proxyFlags(bin)}
	b := &bench{ctx: context.Background(), o: o, procs: p, out: io.Discard}
	text, err := b.reshardSection("Resharding")
	if err != nil || len(b.failures) > 0 {
		t.Fatalf("reshardSection: %v, failures %v\n%s", err, b.failures, text)
	}
	rows := 0
	for _, l := range strings.Split(text, "\n") {
		c := cols(l)
		if len(c) != len(reshardHeader) || c[0] == "run" || strings.HasPrefix(c[0], "-") {
			continue
		}
		rows++
		moved, err := strconv.Atoi(c[2])
		// Jump's default slot table gives a fourth server a quarter of the slots.
		if keys := reshardKeys(true); err != nil || moved < keys/5 || moved > keys/3 {
			t.Errorf("keys moved %q of %d keys: %s", c[2], keys, l)
		}
		last := len(c) - 1
		if rows == 1 {
			last = 5 // no client load: the client columns are empty
		}
		for i := 3; i <= last; i++ {
			if _, err := strconv.ParseFloat(c[i], 64); err != nil {
				t.Errorf("column %s is %q: %s", reshardHeader[i], c[i], l)
			}
		}
	}
	if rows != 2 {
		t.Errorf("%d rows, want 2:\n%s", rows, text)
	}
	if nc, err := lookPath("nutcracker"); err == nil {
		b.o.proxyBin = nc
		if text, err := b.reshardSection("Resharding"); err != nil || !strings.Contains(text, "not measured") {
			t.Errorf("with nutcracker: %v\n%s", err, text)
		}
	}
}
