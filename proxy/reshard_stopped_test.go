package proxy_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/proxy"
)

// TestReshardNewOwnerStopped grows a pool without a timeout whose old
// owner cannot MIGRATE (keys move through the proxy) and stops the new
// owner (SIGSTOP) midway, so that the mover waits in a RESTORE that is
// never answered: a reload still returns at once (it stops the mover by
// closing its connections instead of waiting for the server), and so does
// Shutdown, within its drain bound, while the server is still stopped.
func TestReshardNewOwnerStopped(t *testing.T) {
	b := []*testservers.Server{testservers.Redis(t, "--rename-command", "MIGRATE", ""), testservers.Redis(t)}
	lines := proxytest.ServerLines(b, nil, nil)
	listen := proxytest.FreeListen(t)
	conf := filepath.Join(t.TempDir(), "shardproxy.yml")
	grow := func(rate string) string {
		return proxytest.Pool{Servers: lines, Keys: []string{"migrate_rate: " + rate,
			"migrate_from: {servers: " + flowList(lines[:1]) + "}"}}.YAML("alpha", listen)
	}
	px := proxytest.StartProxyOpts(t, proxytest.Pool{Servers: lines[:1]}.YAML("alpha", listen),
		proxy.Options{StatsAddr: "127.0.0.1:0", ConfigPath: conf})
	fillKeys(t, listen, 400)
	if err := os.WriteFile(conf, []byte(grow("20")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := px.Reload(); err != nil {
		t.Fatal(err)
	}
	for proxytest.PoolStat(t, px, "keys_migrated") == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	proxytest.StopServer(t, b[1])
	t.Cleanup(b[1].Continue)            // before the proxy's cleanup: nothing stays stuck if the checks fail
	time.Sleep(1500 * time.Millisecond) // the mover sends its next RESTORE to the stopped server
	if err := os.WriteFile(conf, []byte(grow("40")), 0o644); err != nil {
		t.Fatal(err)
	}
	reload := timed(func() {
		if err := px.Reload(); err != nil {
			t.Errorf("reload: %v", err)
		}
	}, 10*time.Second)
	stop := timed(func() { px.Shutdown(5 * time.Second) }, 10*time.Second)
	t.Logf("with the new owner stopped: reload took %v, Shutdown %v", reload.Round(time.Millisecond), stop.Round(time.Millisecond))
	if reload > 2*time.Second {
		t.Errorf("reload took %v while the new owner is stopped, want at most 2 s", reload.Round(time.Millisecond))
	}
	if stop > 6*time.Second {
		t.Errorf("Shutdown(5s) took %v while the new owner is stopped, want at most 6 s", stop.Round(time.Millisecond))
	}
}

// timed runs f and returns how long it took, or limit when it has not
// returned by then (it goes on in the background).
func timed(f func(), limit time.Duration) time.Duration {
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
		return time.Since(start)
	case <-time.After(limit):
		return limit
	}
}
