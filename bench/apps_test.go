//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

func TestAppsCases(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []string
	}{
		{60000, []string{"pub/sub 1 subscriber: 1 × 300000", "pub/sub 50 subscribers: 50 × 30000", "BLPOP/LPUSH ping-pong: 15000"}},
		{2000, []string{"pub/sub 1 subscriber: 1 × 10000", "pub/sub 50 subscribers: 50 × 1000", "BLPOP/LPUSH ping-pong: 500"}},
		{100, []string{"pub/sub 1 subscriber: 1 × 500", "pub/sub 50 subscribers: 50 × 100", "BLPOP/LPUSH ping-pong: 100"}},
	} {
		var got []string
		for _, c := range appsCases(tc.n) {
			r := appRow{appCase: c}
			if c.pubsub() {
				got = append(got, fmt.Sprintf("%s: %d × %d", r.name(), c.subscribers, c.count))
			} else {
				got = append(got, fmt.Sprintf("%s: %d", r.name(), c.count))
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("n=%d: cases %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestRenderApps(t *testing.T) {
	tick := time.Second / time.Duration(clockTicks())
	good := func(rate float64, cpu time.Duration, requests int64) cell {
		return cell{ran: true, hasCPU: cpu > 0, cpu: cpu, res: runResult{rps: rate, p50: 0.05, p99: 0.25,
			hasLatency: true, requests: requests}}
	}
	lost := errors.New("subscriber 3: after 10 of 1000 messages: EOF")
	coarse := good(5000, 10*tick, 500)
	coarse.coarse = true // fewer than coarseTicks clock ticks
	rows := []appRow{
		{appCase: appCase{label: "1 subscriber", subscribers: 1, count: 1000},
			direct: good(400000, 0, 1000), proxy: good(200000, 100*tick, 1000)},
		{appCase: appCase{label: "50 subscribers", subscribers: 50, count: 1000},
			direct: good(1e6, 0, 50000), proxy: cell{ran: true, err: lost}},
		{appCase: appCase{label: "BLPOP/LPUSH ping-pong", count: 500},
			direct: good(20000, 0, 500), proxy: coarse},
	}
	out := renderApps(rows)
	pub, ping := sectionOf(out, "### Pub/sub"), sectionOf(out, "### Blocking commands")
	wantPub := [][]string{
		{"1", "1000", "1000", "400000", "n/a", "200000", "0.50", fmtCPU(100 * tick * 1000)},
		{"50", "1000", "50000", "1000000", "n/a", "ERR", "-", "-"},
	}
	wantPing := [][]string{{"BLPOP/LPUSH ping-pong", "500", "20000", "n/a", "5000", "0.25", "0.050", "0.050", "0.250", "0.250",
		"~" + fmtCPU(10*tick*2000)}}
	checkTable(t, pub, pubsubHeader, wantPub)
	checkTable(t, ping, pingpongHeader, wantPing)
	for _, want := range []string{"- pub/sub 50 subscribers on shardproxy failed: " + lost.Error(), "nutcracker: n/a"} {
		if !strings.Contains(pub, want) {
			t.Errorf("pub/sub table lacks %q:\n%s", want, pub)
		}
	}
	if strings.Contains(ping, "failed") || !strings.Contains(ping, "nutcracker: n/a") {
		t.Errorf("ping-pong notes:\n%s", ping)
	}

	// A proxy under test that is not shardproxy: its columns are n/a.
	for i := range rows {
		rows[i].proxy, rows[i].proxyNA = cell{}, true
	}
	out = renderApps(rows)
	checkTable(t, sectionOf(out, "### Pub/sub"), pubsubHeader, [][]string{
		{"1", "1000", "1000", "400000", "n/a", "n/a", "n/a", "n/a"},
		{"50", "1000", "50000", "1000000", "n/a", "n/a", "n/a", "n/a"}})
	checkTable(t, sectionOf(out, "### Blocking commands"), pingpongHeader, [][]string{
		{"BLPOP/LPUSH ping-pong", "500", "20000", "n/a", "n/a", "n/a", "0.050", "n/a", "0.250", "n/a", "n/a"}})
	if strings.Count(out, "shardproxy: n/a, the proxy under test is not shardproxy") != 2 {
		t.Errorf("each table should say why shardproxy is n/a:\n%s", out)
	}
}

// checkTable compares the data lines of a rendered table with want.
func checkTable(t *testing.T, text string, header []string, want [][]string) {
	t.Helper()
	lines := strings.Split(text, "\n")
	if len(lines) < 4+len(want) || !slices.Equal(cols(lines[2]), header) {
		t.Fatalf("unexpected table:\n%s", text)
	}
	for i, w := range want {
		if got := cols(lines[4+i]); !slices.Equal(got, w) {
			t.Errorf("row %d\n got %q\nwant %q", i, got, w)
		}
	}
}

func TestFanoutPacesThePublisher(t *testing.T) {
	f := newFanout(3)
	f.advance(0, 5)
	f.advance(1, 7)
	if got := f.slowest(); got != 0 {
		t.Errorf("slowest %d with one subscriber at 0, want 0", got)
	}
	f.advance(2, 4)
	if got := f.slowest(); got != 4 {
		t.Errorf("slowest %d, want 4", got)
	}
	if err := f.waitLow(4); err != nil {
		t.Errorf("waitLow(4) = %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- f.waitLow(6) }()
	f.advance(2, 3) // 5, 7, 7: not yet
	select {
	case err := <-done:
		t.Fatalf("waitLow(6) returned %v at slowest %d", err, f.slowest())
	case <-time.After(50 * time.Millisecond):
	}
	f.advance(0, 1) // 6, 7, 7
	if err := <-done; err != nil {
		t.Errorf("waitLow(6) = %v", err)
	}
	go func() { done <- f.waitLow(100) }()
	f.stop(io.ErrUnexpectedEOF)
	if err := <-done; !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("waitLow after a failure = %v, want the failure", err)
	}
	f.stop(errors.New("later"))
	if err := f.failure(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("failure %v, want the first", err)
	}
}

// TestFrameReader feeds replies split at every byte, and a reply longer
// than the first buffer, and one cut short by the peer's close.
func TestFrameReader(t *testing.T) {
	big := strings.Repeat("b", 100<<10)
	replies := []string{":1\r\n", "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nx\r\n", "$" + fmt.Sprint(len(big)) + "\r\n" + big + "\r\n", "+OK\r\n"}
	client, server := net.Pipe()
	go func() {
		for _, r := range replies[:2] {
			for i := range len(r) {
				_, _ = server.Write([]byte{r[i]})
			}
		}
		_, _ = server.Write([]byte(replies[2] + replies[3] + "*2\r\n$1\r\n"))
		_ = server.Close()
	}()
	r := newFrameReader(client)
	for i, want := range replies {
		if err := r.expect(fmt.Sprint("reply ", i), []byte(want)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("reply cut short: %v, want io.ErrUnexpectedEOF", err)
	}
	if err := r.expect("x", []byte("+OK\r\n")); err == nil {
		t.Error("expect after the end succeeded")
	}
}

// TestAppsSection runs the apps rows against real redis-servers and a
// shardproxy built from the module: every cell is measured and counts what
// was delivered. Then a nutcracker stands in as the proxy under test: it
// refuses SUBSCRIBE and BLPOP (it closes the connection), so each proxy
// cell fails with its error listed under its table, the other rows still
// run, and the section does not abort.
func TestAppsSection(t *testing.T) {
	nc := testservers.Need(t, "nutcracker")
	b, _ := prepared(t, []string{"-quick", "-n", "400", "-sections", "apps", "-nutcracker-bin", nc}, "redis-server", "go")
	if !b.o.proxyApps {
		t.Fatal("the proxy built from the module is not taken for shardproxy")
	}
	start := time.Now()
	text, err := b.appsSection(appsCases(b.o.n))
	if err != nil || len(b.failures) > 0 {
		t.Fatalf("appsSection: %v, failures %q\n%s", err, b.failures, text)
	}
	for _, r := range b.results.apps {
		t.Logf("%s: direct %.0f/s, shardproxy %.0f/s (p99 %.3f vs %.3f ms)", r.name(), r.direct.res.rps, r.proxy.res.rps,
			r.direct.res.p99, r.proxy.res.p99)
		want := int64(r.count) * int64(max(r.subscribers, 1))
		for _, c := range []cell{r.direct, r.proxy} {
			if !ok(c) || c.res.rps <= 0 || c.res.requests != want || c.res.hasLatency == r.pubsub() {
				t.Errorf("%s: cell %+v, want %d delivered", r.name(), c, want)
			}
		}
		if _, ok := r.proxy.cpuPerReq(); !ok {
			t.Errorf("%s: no CPU per request for the proxy", r.name())
		}
	}
	t.Logf("measured in %v", time.Since(start).Round(time.Millisecond))

	b.cl.redis[shardproxy], b.cl.pid[shardproxy] = b.cl.redis[nutcracker], b.cl.pid[nutcracker]
	text, err = b.appsSection(appsCases(b.o.n))
	if err != nil {
		t.Fatalf("appsSection through a proxy that refuses: %v", err)
	}
	t.Logf("failures through nutcracker: %q", b.failures)
	if len(b.failures) != 3 {
		t.Errorf("%d failures, want one per row:\n%s", len(b.failures), text)
	}
	for _, r := range b.results.apps {
		if !ok(r.direct) || r.proxy.err == nil || !strings.Contains(text, r.name()+" on shardproxy failed: ") {
			t.Errorf("%s: direct %v, proxy %v:\n%s", r.name(), r.direct.err, r.proxy.err, text)
		}
	}
}
