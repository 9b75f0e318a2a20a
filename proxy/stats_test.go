package proxy_test

import (
	"sort"
	"testing"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/proxy"
)

// TestStatsKeysMatchNutcracker checks that the stats document has every
// key nutcracker's has, at the top, per pool and per server, with the same
// JSON type, so that dashboards reading nutcracker's stats keep working.
func TestStatsKeysMatchNutcracker(t *testing.T) {
	backends := proxytest.StartRedisBackends(t, 2)
	ncListen := proxytest.FreeListen(t)
	nc := testservers.Nutcracker(t, proxytest.PoolYAML(ncListen, backends), ncListen)
	px := proxytest.StartProxyOpts(t, proxytest.PoolYAML(proxytest.FreeListen(t), backends), proxy.Options{StatsAddr: "127.0.0.1:0"})
	for _, addr := range []string{ncListen, px.Addr(0).String()} {
		rc := proxytest.Dial(t, addr)
		if got := rc.Do("SET", "stats:k", "v"); got != "+OK\r\n" {
			t.Fatalf("SET through %s: %q", addr, got)
		}
	}
	want := proxytest.FetchStats(t, nc.Addr)
	got := proxytest.FetchStats(t, px.StatsAddr().String())
	var missing []string
	var compare func(path string, w, g map[string]any)
	compare = func(path string, w, g map[string]any) {
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				missing = append(missing, path+k)
				continue
			}
			wm, wIsMap := wv.(map[string]any)
			gm, gIsMap := gv.(map[string]any)
			switch {
			case wIsMap && gIsMap:
				compare(path+k+".", wm, gm)
			case wIsMap != gIsMap:
				missing = append(missing, path+k+" (type)")
			default:
				if _, wNum := wv.(float64); wNum {
					if _, gNum := gv.(float64); !gNum {
						missing = append(missing, path+k+" (not a number)")
					}
				}
			}
		}
	}
	compare("", want, got)
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("keys of nutcracker's stats missing or of another type: %v", missing)
	}
}
