package proxy_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

// TestFaultEjectRehash kills one of four backends with auto_eject_hosts:
// once the server is ejected, requests for every key succeed (its keys
// move to the others); after a restart it passes its health check, comes
// back, and keys written after its return live on it again.
func TestFaultEjectRehash(t *testing.T) {
	const timeout = 500 * time.Millisecond
	maxLat := timeout + 400*time.Millisecond
	b := startRedisBackends(t, 4)
	f := startFixture(t, pool{keys: []string{"timeout: 500", "auto_eject_hosts: true", "server_failure_limit: 2",
		"server_retry_timeout: 300"}}, b)
	l := startLoad(t, f, 40, 4)
	time.Sleep(300 * time.Millisecond)
	lines := []string{l.phase("kill").check(t, -1, nil, maxLat)}

	killed := time.Now()
	b[1].Kill()
	time.Sleep(1500 * time.Millisecond)
	ph := l.phase("ejected")
	lines = append(lines, ph.check(t, 1, errorCause(f, 1, "server unavailable", "."), maxLat))
	if last := ph.lastErr[1]; !last.IsZero() {
		lines = append(lines, fmt.Sprintf("last error %v after the kill", last.Sub(killed).Round(time.Millisecond)))
		if last.Sub(killed) > time.Second {
			t.Errorf("errors went on %v after the kill: the server was not ejected", last.Sub(killed))
		}
	}
	time.Sleep(time.Second)
	lines = append(lines, l.phase("return").check(t, -1, nil, maxLat))

	restarted := time.Now()
	b[1].Restart()
	back := false
	for time.Since(restarted) < 3*time.Second && !back {
		time.Sleep(20 * time.Millisecond)
		n, err := dbsizeErr(t, b[1].Addr)
		back = err == nil && n > 0
	}
	if !back {
		t.Errorf("restarted server got no keys within 3 s: it did not come back")
	}
	lines = append(lines, fmt.Sprintf("keys written to the restarted server %v after its restart",
		time.Since(restarted).Round(time.Millisecond)))
	time.Sleep(500 * time.Millisecond)
	lines = append(lines, l.phase("end").check(t, 1, nil, maxLat))
	l.halt()

	c := dialClient(t, f.addr)
	key := f.keysOn(1, "ftreturn:", 1)[0]
	if got := c.do("SET", key, "back"); got != "+OK\r\n" {
		t.Fatalf("SET through the proxy: %q", got)
	}
	if got, err := testservers.Do(b[1].Addr, "GET", key); err != nil || got != "back" {
		t.Errorf("GET %s on the restarted server: %q %v, want \"back\"", key, got, err)
	}
	for _, s := range lines {
		t.Log(s)
	}
}

// TestFaultPipelineTimeout pipelines 100 GETs for a hung backend,
// interleaved with GETs for a healthy one: each hung GET gets the timeout
// error, every reply comes in request order, none is missing, all within
// the timeout, and the connection stays usable.
func TestFaultPipelineTimeout(t *testing.T) {
	runParallel(t)
	b := startRedisBackends(t, 2)
	f := startFixture(t, pool{keys: []string{"timeout: 500"}}, b)
	hung, healthy := f.keysOn(0, "fthung:", 100), f.keysOn(1, "ftok:", 50)
	c := dialClient(t, f.addr)
	var req []byte
	var want []string
	for i, k := range healthy {
		if got := c.do("SET", k, fmt.Sprint("v", i)); got != "+OK\r\n" {
			t.Fatalf("SET %s: %q", k, got)
		}
	}
	timedOut := "-ERR timeout: " + f.idents[0] + ": no reply within 500ms\r\n"
	for i, k := range hung {
		req, want = encodeCommand(req, "GET", k), append(want, timedOut)
		if i%2 == 0 {
			req, want = encodeCommand(req, "GET", healthy[i/2]), append(want, bulk(fmt.Sprint("v", i/2)))
		}
	}
	stopServer(t, b[0])
	defer b[0].Continue()
	start := time.Now()
	c.nc.SetDeadline(start.Add(10 * time.Second))
	if _, err := c.nc.Write(req); err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		rep, err := readReply(c.r)
		if err != nil {
			t.Fatalf("reply %d of %d: %v", i+1, len(want), err)
		}
		if rep.raw != w {
			t.Fatalf("reply %d of %d: got %q, want %q", i+1, len(want), rep.raw, w)
		}
	}
	elapsed := time.Since(start)
	t.Logf("%d replies (100 timeouts) in %v", len(want), elapsed.Round(time.Millisecond))
	if elapsed > 900*time.Millisecond {
		t.Errorf("replies took %v, want at most the 500 ms timeout and a margin", elapsed)
	}
	b[0].Continue()
	untilOK(t, c, "SET", hung[0], "after")
	if got := c.do("GET", hung[0]); got != bulk("after") {
		t.Errorf("GET after the server resumed: %q", got)
	}
}

// untilOK repeats a command until it succeeds, for up to 3 s.
func untilOK(t *testing.T, c *clientConn, args ...string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		rep, err := c.tryDo(5*time.Second, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if rep.kind != '-' {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v still fails after 3 s: %v", args, rep)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFaultMemcache kills, then hangs, one of two memcached backends: its
// keys get SERVER_ERROR naming server and cause, a multi-key get touching
// it fails whole, the other server's keys are unaffected, and it is served
// again once it is back.
func TestFaultMemcache(t *testing.T) {
	runParallel(t)
	b := startMemcacheBackends(t, 2)
	f := startFixture(t, pool{memcache: true, keys: []string{"timeout: 500"}}, b)
	k0, k1 := f.keysOn(0, "ftmc:", 1)[0], f.keysOn(1, "ftmc:", 1)[0]
	c := dialClient(t, f.addr)
	expect := func(req, want string) {
		t.Helper()
		if got := c.roundTrip(req); got != want {
			t.Errorf("%q: got %q, want %q", req, got, want)
		}
	}
	expectPrefix := func(req, prefix string) {
		t.Helper()
		if got := c.roundTrip(req); !strings.HasPrefix(got, prefix) {
			t.Errorf("%q: got %q, want %q...", req, got, prefix)
		}
	}
	// untilStored repeats a storage request until it is stored, for up
	// to 3 s.
	untilStored := func(req string) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for got := c.roundTrip(req); got != "STORED\r\n"; got = c.roundTrip(req) {
			if time.Now().After(deadline) {
				t.Fatalf("%q: still %q after 3 s", req, got)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	expect("set "+k1+" 0 0 2\r\nv1\r\n", "STORED\r\n")
	down := "SERVER_ERROR server unavailable: " + f.idents[0] + ": "
	hung := "SERVER_ERROR timeout: " + f.idents[0] + ": no reply within 500ms\r\n"
	b[0].Kill()
	expectPrefix("get "+k0+"\r\n", down)
	expect("get "+k1+"\r\n", "VALUE "+k1+" 0 2\r\nv1\r\nEND\r\n")
	expectPrefix("get "+k1+" "+k0+"\r\n", down)
	b[0].Restart()
	untilStored("set " + k0 + " 0 0 2\r\nv0\r\n")
	expect("get "+k1+" "+k0+"\r\n", "VALUE "+k1+" 0 2\r\nv1\r\nVALUE "+k0+" 0 2\r\nv0\r\nEND\r\n")
	stopServer(t, b[0])
	start := time.Now()
	expect("get "+k0+"\r\n", hung)
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("timeout reply after %v", d)
	}
	expect("get "+k1+"\r\n", "VALUE "+k1+" 0 2\r\nv1\r\nEND\r\n")
	b[0].Continue()
	untilStored("set " + k0 + " 0 0 2\r\nv2\r\n")
}
