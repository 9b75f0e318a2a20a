package proxy_test

import (
	"bufio"
	"fmt"
	"net"
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
	b := ftRedisBackends(t, 4)
	f := ftStart(t, ftPool{timeoutMS: 500, autoEject: true, failureLimit: 2, retryMS: 300, backends: b})
	l := startFtLoad(t, f, 40, 4)
	time.Sleep(300 * time.Millisecond)
	lines := []string{l.phase("kill").check(t, -1, nil, maxLat)}

	killed := time.Now()
	b[1].Kill()
	time.Sleep(1500 * time.Millisecond)
	ph := l.phase("ejected")
	lines = append(lines, ph.check(t, 1, ftCause(f, 1, "server unavailable", "."), maxLat))
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
		back = ftDBSize(t, b[1].Addr) > 0
	}
	if !back {
		t.Errorf("restarted server got no keys within 3 s: it did not come back")
	}
	lines = append(lines, fmt.Sprintf("keys written to the restarted server %v after its restart",
		time.Since(restarted).Round(time.Millisecond)))
	time.Sleep(500 * time.Millisecond)
	lines = append(lines, l.phase("end").check(t, 1, nil, maxLat))
	l.halt()

	c, err := ftDial(f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.nc.Close()
	key := f.keysOn(1, "ftreturn:", 1)[0]
	if rep, err := c.do(5*time.Second, "SET", key, "back"); err != nil || rep.str != "OK" {
		t.Fatalf("SET through the proxy: %v %v", rep, err)
	}
	if got, err := testservers.Do(b[1].Addr, "GET", key); err != nil || got != "back" {
		t.Errorf("GET %s on the restarted server: %q %v, want \"back\"", key, got, err)
	}
	for _, s := range lines {
		t.Log(s)
	}
}

// ftDBSize returns the number of keys of a backend, or -1 when it cannot
// be asked.
func ftDBSize(t *testing.T, addr string) int {
	rep, err := testservers.Do(addr, "DBSIZE")
	if err != nil {
		return -1
	}
	var n int
	if _, err := fmt.Sscanf(rep, ":%d", &n); err != nil {
		t.Fatalf("DBSIZE %s: %q", addr, rep)
	}
	return n
}

// TestFaultPipelineTimeout pipelines 100 GETs for a hung backend,
// interleaved with GETs for a healthy one: each hung GET gets the timeout
// error, every reply comes in request order, none is missing, all within
// the timeout, and the connection stays usable.
func TestFaultPipelineTimeout(t *testing.T) {
	t.Parallel()
	b := ftRedisBackends(t, 2)
	f := ftStart(t, ftPool{timeoutMS: 500, backends: b})
	hung, healthy := f.keysOn(0, "fthung:", 100), f.keysOn(1, "ftok:", 50)
	c, err := ftDial(f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.nc.Close()
	var req []byte
	var want []string
	for i, k := range healthy {
		if rep, err := c.do(5*time.Second, "SET", k, fmt.Sprint("v", i)); err != nil || rep.str != "OK" {
			t.Fatalf("SET %s: %v %v", k, rep, err)
		}
	}
	timedOut := "-ERR timeout: " + f.idents[0] + ": no reply within 500ms"
	for i, k := range hung {
		req, want = ftCommand(req, "GET", k), append(want, timedOut)
		if i%2 == 0 {
			req, want = ftCommand(req, "GET", healthy[i/2]), append(want, fmt.Sprint("$v", i/2))
		}
	}
	ftStop(t, b[0])
	defer b[0].Continue()
	start := time.Now()
	c.nc.SetDeadline(start.Add(10 * time.Second))
	if _, err := c.nc.Write(req); err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		rep, err := ftRead(c.r)
		if err != nil {
			t.Fatalf("reply %d of %d: %v", i+1, len(want), err)
		}
		if got := string(rep.kind) + rep.str; got != w {
			t.Fatalf("reply %d of %d: got %q, want %q", i+1, len(want), got, w)
		}
	}
	elapsed := time.Since(start)
	t.Logf("%d replies (100 timeouts) in %v", len(want), elapsed.Round(time.Millisecond))
	if elapsed > 900*time.Millisecond {
		t.Errorf("replies took %v, want at most the 500 ms timeout and a margin", elapsed)
	}
	b[0].Continue()
	ftUntilOK(t, c, "SET", hung[0], "after")
	if rep, err := c.do(5*time.Second, "GET", hung[0]); err != nil || rep.str != "after" {
		t.Errorf("GET after the server resumed: %v %v", rep, err)
	}
}

// ftUntilOK repeats a command until it succeeds, for up to 3 s.
func ftUntilOK(t *testing.T, c *ftConn, args ...string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		rep, err := c.do(5*time.Second, args...)
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
	t.Parallel()
	b := []*testservers.Server{testservers.Memcached(t), testservers.Memcached(t)}
	f := ftStart(t, ftPool{memcache: true, timeoutMS: 500, backends: b})
	k0, k1 := f.keysOn(0, "ftmc:", 1)[0], f.keysOn(1, "ftmc:", 1)[0]
	nc, err := net.DialTimeout("tcp", f.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	mc := &ftMemcacheConn{t: t, nc: nc, r: bufio.NewReader(nc)}
	mc.expect("set "+k1+" 0 0 2\r\nv1\r\n", "STORED\r\n")
	down := "SERVER_ERROR server unavailable: " + f.idents[0] + ": "
	hung := "SERVER_ERROR timeout: " + f.idents[0] + ": no reply within 500ms\r\n"
	b[0].Kill()
	mc.expectPrefix("get "+k0+"\r\n", down)
	mc.expect("get "+k1+"\r\n", "VALUE "+k1+" 0 2\r\nv1\r\nEND\r\n")
	mc.expectPrefix("get "+k1+" "+k0+"\r\n", down)
	b[0].Restart()
	mc.untilStored("set " + k0 + " 0 0 2\r\nv0\r\n")
	mc.expect("get "+k1+" "+k0+"\r\n", "VALUE "+k1+" 0 2\r\nv1\r\nVALUE "+k0+" 0 2\r\nv0\r\nEND\r\n")
	ftStop(t, b[0])
	start := time.Now()
	mc.expect("get "+k0+"\r\n", hung)
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("timeout reply after %v", d)
	}
	mc.expect("get "+k1+"\r\n", "VALUE "+k1+" 0 2\r\nv1\r\nEND\r\n")
	b[0].Continue()
	mc.untilStored("set " + k0 + " 0 0 2\r\nv2\r\n")
}

// ftMemcacheConn is a raw memcache client connection.
type ftMemcacheConn struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

// exchange sends req and reads as many bytes as want has, or one line when
// want ends early.
func (mc *ftMemcacheConn) exchange(req string, n int) string {
	mc.t.Helper()
	mc.nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := mc.nc.Write([]byte(req)); err != nil {
		mc.t.Fatalf("write %q: %v", req, err)
	}
	var got strings.Builder
	for got.Len() < n {
		line, err := mc.r.ReadString('\n')
		got.WriteString(line)
		if err != nil {
			mc.t.Fatalf("%q: read: %v (got %q)", req, err, got.String())
		}
		if strings.HasPrefix(line, "SERVER_ERROR") || strings.HasPrefix(line, "CLIENT_ERROR") {
			break
		}
	}
	return got.String()
}

func (mc *ftMemcacheConn) expect(req, want string) {
	mc.t.Helper()
	if got := mc.exchange(req, len(want)); got != want {
		mc.t.Errorf("%q: got %q, want %q", req, got, want)
	}
}

func (mc *ftMemcacheConn) expectPrefix(req, prefix string) {
	mc.t.Helper()
	if got := mc.exchange(req, 1); !strings.HasPrefix(got, prefix) {
		mc.t.Errorf("%q: got %q, want %q...", req, got, prefix)
	}
}

// untilStored repeats a storage request until it is stored, for up to 3 s.
func (mc *ftMemcacheConn) untilStored(req string) {
	mc.t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		got := mc.exchange(req, 1)
		if got == "STORED\r\n" {
			return
		}
		if time.Now().After(deadline) {
			mc.t.Fatalf("%q: still %q after 3 s", req, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
