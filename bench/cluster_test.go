//go:build linux

package main

import (
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/shardproxy/shardproxy/hashring"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// TestClusterMSETSplitPerSlot checks what the direct go-redis load sends
// for one MSET: one MSET per slot, together the 10 keys, each key once.
// Through a proxy it is one MSET of all 10. The pipelines go to a closed
// port: Exec fails, but returns the commands it was given.
func TestClusterMSETSplitPerSlot(t *testing.T) {
	for _, cluster := range []bool{true, false} {
		w := clusterWorker{goLoad: goLoad{test: "mset", pipeline: 1, keyspace: clusterKeyspace, cluster: cluster},
			rng: rand.New(rand.NewPCG(1, 2))}
		c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1})
		p := c.Pipeline()
		w.mset(context.Background(), p)
		cmds, err := p.Exec(context.Background())
		_ = c.Close()
		if err == nil {
			t.Fatal("Exec to a closed port succeeded")
		}
		keys := map[string]bool{}
		for _, cmd := range cmds {
			args := cmd.Args()
			if args[0] != "mset" || len(args)%2 != 1 {
				t.Fatalf("cluster=%v: command %v, want MSET of key/value pairs", cluster, args)
			}
			slots := map[int]bool{}
			for i := 1; i < len(args); i += 2 {
				k := args[i].(string)
				slots[hashring.ClusterSlot([]byte(k))] = true
				if args[i+1] != goValue || keys[k] {
					t.Errorf("key %q twice or value %v", k, args[i+1])
				}
				keys[k] = true
			}
			if cluster && len(slots) != 1 {
				t.Errorf("direct MSET %v spans %d slots", args, len(slots))
			}
		}
		if len(keys) != msetKeys {
			t.Errorf("cluster=%v: %d keys in all, want %d", cluster, len(keys), msetKeys)
		}
		if !cluster && len(cmds) != 1 {
			t.Errorf("through a proxy: %d commands, want one MSET", len(cmds))
		}
		if cluster && len(cmds) < 2 {
			t.Errorf("direct: %d MSETs for 10 random keys of 10^6, want one per slot", len(cmds))
		}
	}
}

// TestRandKey checks the keys are redis-benchmark's: key: and 12 digits.
func TestRandKey(t *testing.T) {
	w := clusterWorker{goLoad: goLoad{keyspace: 1000}, rng: rand.New(rand.NewPCG(3, 4))}
	for range 100 {
		k := w.randKey()
		n, err := strconv.Atoi(strings.TrimPrefix(k, "key:"))
		if len(k) != 16 || !strings.HasPrefix(k, "key:") || err != nil || n < 0 || n >= 1000 {
			t.Fatalf("key %q, want key: and 12 digits below 1000", k)
		}
	}
}

// TestQuickCluster runs the cluster section in quick mode with a shardproxy
// built from the module, against a Redis Cluster the section starts.
func TestQuickCluster(t *testing.T) {
	nc := testservers.Need(t, "nutcracker")
	b, _ := prepared(t, []string{"-quick", "-sections", "cluster", "-nutcracker-bin", nc}, "redis-server", "redis-cli", "redis-benchmark")
	if err := b.runSections(); err != nil || len(b.failures) > 0 {
		t.Fatalf("runSections: %v, failures %v", err, b.failures)
	}
	checkQuickCluster(t, sectionOf(b.report.String(), "### Redis Cluster"), true)
	if n := len(b.results.cluster); n != 2 {
		t.Fatalf("%d cluster rows, want 2", n)
	}
	for _, r := range b.results.cluster {
		if r.proxy.res.requests < 2000 || r.direct.res.requests < 2000 {
			t.Errorf("%s row: %d and %d requests, want at least -n 2000", r.client, r.proxy.res.requests, r.direct.res.requests)
		}
	}
}

// checkQuickCluster checks the cluster table of a quick run: a SET P=1
// row for redis-benchmark and one for go-redis, direct measured (rps and
// the nodes' CPU), and shardproxy measured too when withProxy, else n/a.
func checkQuickCluster(t *testing.T, text string, withProxy bool) {
	t.Helper()
	var rows [][]string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "| set ") {
			rows = append(rows, cols(l))
		}
	}
	if len(rows) != 2 {
		t.Fatalf("cluster table has %d set rows, want 2:\n%s", len(rows), text)
	}
	for i, client := range []string{"redis-benchmark", "go-redis"} {
		r := rows[i]
		if len(r) != len(clusterHeader) || r[1] != "1" || r[2] != client {
			t.Fatalf("row %d: %q, want set P=1 %s in %d columns", i, r, client, len(clusterHeader))
		}
		number := func(col int) {
			if _, err := strconv.ParseFloat(strings.TrimPrefix(r[col], "~"), 64); err != nil {
				t.Errorf("%s row: column %s is %q", client, clusterHeader[col], r[col])
			}
		}
		number(3)
		number(10)
		for _, col := range []int{4, 5, 11, 12, 13} {
			switch {
			case withProxy && col == 13 && r[col] == "-":
				// The nodes used no clock tick on a run this short: no ratio.
			case withProxy:
				number(col)
			case r[col] != "n/a":
				t.Errorf("%s row: column %s is %q, want n/a with no shardproxy", client, clusterHeader[col], r[col])
			}
		}
	}
}

// TestClusterBenchArgs checks redis-benchmark's command lines: through the
// proxy and direct alike, 50 clients and 3 threads; direct adds --cluster;
// SET and GET send 4 × the go-redis requests, MSET the same.
func TestClusterBenchArgs(t *testing.T) {
	cases := clusterCases(1000, false)
	if len(cases) != 6 {
		t.Fatalf("%d cases, want 6", len(cases))
	}
	want := map[string]string{
		"set 1 proxy":    "-h 127.0.0.1 -p 1 -c 50 -n 4000 -P 1 --csv -r 1000000 --threads 3 -t set",
		"set 1 direct":   "-h 127.0.0.1 -p 1 -c 50 -n 4000 -P 1 --csv -r 1000000 --cluster --threads 3 -t set",
		"mset 16 proxy":  "-h 127.0.0.1 -p 1 -c 50 -n 5000 -P 16 --csv -r 1000000 --threads 3 -t mset",
		"get 16 direct":  "-h 127.0.0.1 -p 1 -c 50 -n 20000 -P 16 --csv -r 1000000 --cluster --threads 3 -t get",
		"mset 1 direct":  "-h 127.0.0.1 -p 1 -c 50 -n 1000 -P 1 --csv -r 1000000 --cluster --threads 3 -t mset",
		"get 16 proxy":   "-h 127.0.0.1 -p 1 -c 50 -n 20000 -P 16 --csv -r 1000000 --threads 3 -t get",
		"set 16 direct":  "-h 127.0.0.1 -p 1 -c 50 -n 20000 -P 16 --csv -r 1000000 --cluster --threads 3 -t set",
		"mset 16 direct": "-h 127.0.0.1 -p 1 -c 50 -n 5000 -P 16 --csv -r 1000000 --cluster --threads 3 -t mset",
	}
	seen := 0
	for _, c := range cases {
		for _, leg := range []string{"proxy", "direct"} {
			name := c.test + " " + strconv.Itoa(c.pipeline) + " " + leg
			w, ok := want[name]
			if !ok {
				continue
			}
			seen++
			a, err := c.redisCase(leg == "direct").args("127.0.0.1:1")
			if got := strings.Join(a, " "); err != nil || got != w {
				t.Errorf("%s: %q (%v), want %q", name, got, err, w)
			}
		}
		if g := c.goLoad(false); g.requests != c.requests || g.clients != clusterClients || g.pipeline != c.pipeline {
			t.Errorf("%s P=%d go-redis load %+v", c.test, c.pipeline, g)
		}
	}
	if seen != len(want) {
		t.Errorf("checked %d command lines, want %d", seen, len(want))
	}
}
