//go:build linux

package main

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

func TestRESP3Cases(t *testing.T) {
	var got []string
	for _, c := range resp3Cases(1000, false) {
		got = append(got, rowName(c.label, strconv.Itoa(c.pipeline))+" n="+strconv.Itoa(c.requests))
		args, err := c.args("127.0.0.1:7000")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(args, "-3") {
			t.Errorf("%s: args %q lack -3", c.label, args)
		}
	}
	want := []string{"set P=1 n=1000", "get P=1 n=1000", "set P=16 n=5000", "get P=16 n=5000"}
	if !slices.Equal(got, want) {
		t.Errorf("cases %q, want %q", got, want)
	}
	if q := resp3Cases(1000, true); len(q) != 1 || q[0].label != "set" || q[0].pipeline != 1 {
		t.Errorf("quick cases %+v, want set P=1 alone", q)
	}
	// RESP2 runs keep their command line: no -3, nothing else changed.
	args, err := redisCases(1000, true)[0].args("127.0.0.1:7000")
	if err != nil {
		t.Fatal(err)
	}
	want = strings.Fields("-h 127.0.0.1 -p 7000 -c 50 -n 1000 -P 1 --csv -r 1000000 -t set")
	if !slices.Equal(args, want) {
		t.Errorf("RESP2 args %q, want %q", args, want)
	}
}

func TestRenderRESP3(t *testing.T) {
	tick := time.Second / time.Duration(clockTicks())
	cpu := 1000 * tick // µs per request below = cpu µs / 1e6 requests
	good := func(rps float64, cpu time.Duration) cell {
		return cell{ran: true, hasCPU: cpu > 0, cpu: cpu, res: runResult{rps: rps, p50: 0.5, p99: 1.25, hasLatency: true, requests: 1e6}}
	}
	refused := errors.New("redis-benchmark -3: exit status 1: Error from server: NOPROTO unsupported protocol version")
	tests := []struct {
		name  string
		row   protoRow
		want  []string // cells of the data line, in order
		notes []string // in the text under the table
	}{
		{name: "measured", row: protoRow{test: "set", pipeline: "16",
			direct: good(1000, 0), proxy: good(760, 2*cpu), proxyRESP2: good(800, 2*cpu)},
			want: []string{"set", "16", "1000", "n/a", "760", "0.76", "0.500", "1.250", fmtCPU(2 * cpu),
				"800", "0.95", fmtCPU(2 * cpu), "1.00"}},
		{name: "proxy refuses HELLO 3", row: protoRow{test: "get", pipeline: "1",
			direct: good(1000, 0), proxy: cell{ran: true, err: refused}, proxyRESP2: good(800, cpu)},
			want:  []string{"get", "1", "1000", "n/a", "ERR", "-", "-", "-", "-", "800", "-", fmtCPU(cpu), "-"},
			notes: []string{"- get P=1 on shardproxy failed: " + refused.Error()}},
		{name: "direct fails too", row: protoRow{test: "get", pipeline: "1",
			direct: cell{ran: true, err: errors.New("closed")}, proxy: cell{ran: true, err: refused}, proxyRESP2: good(800, cpu)},
			want:  []string{"get", "1", "ERR", "n/a", "ERR", "-", "-", "-", "-", "800", "-", fmtCPU(cpu), "-"},
			notes: []string{"- get P=1 on direct failed: closed", "- get P=1 on shardproxy failed: " + refused.Error()}},
		{name: "no shardproxy", row: protoRow{test: "set", pipeline: "1", direct: good(1000, 0), proxyNA: true},
			want:  []string{"set", "1", "1000", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a"},
			notes: []string{"shardproxy: n/a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := renderRESP3("T", []protoRow{tc.row})
			lines := strings.Split(out, "\n")
			if len(lines) < 6 || lines[0] != "### T" || len(cols(lines[2])) != len(resp3Header) {
				t.Fatalf("unexpected table:\n%s", out)
			}
			if got := cols(lines[4]); !slices.Equal(got, tc.want) {
				t.Errorf("row\n got %q\nwant %q", got, tc.want)
			}
			for _, n := range append(tc.notes, "nutcracker: n/a") {
				if !strings.Contains(out, n) {
					t.Errorf("text lacks %q:\n%s", n, out)
				}
			}
			if strings.Contains(out, "failed") != (tc.row.proxy.err != nil) {
				t.Errorf("failure notes do not match the failed cells:\n%s", out)
			}
		})
	}
}

func TestRESP3Checks(t *testing.T) {
	tick := time.Second / time.Duration(clockTicks())
	c := func(rps float64, cpu time.Duration) cell {
		return cell{ran: true, hasCPU: true, cpu: cpu, res: runResult{rps: rps, hasLatency: true, requests: 1000}}
	}
	rows := []protoRow{
		{test: "set", pipeline: "1", proxy: c(97, 102*tick), proxyRESP2: c(100, 100*tick)},
		{test: "get", pipeline: "1", proxy: c(90, 100*tick), proxyRESP2: c(100, 100*tick)},
		{test: "set", pipeline: "16", proxy: c(100, 110*tick), proxyRESP2: c(100, 100*tick)},
		{test: "get", pipeline: "16", proxy: cell{ran: true, err: errors.New("NOPROTO")}, proxyRESP2: c(100, tick)},
		{test: "set", pipeline: "1", proxyNA: true},
	}
	var got []string
	for _, ch := range resp3Checks(rows) {
		got = append(got, ch.row+" "+ch.met+" "+ch.measured)
	}
	want := []string{"set P=1 yes rps 0.97, CPU 1.02", "get P=1 no rps 0.90, CPU 1.00",
		"set P=16 no rps 1.00, CPU 1.10", "get P=16 - ", "set P=1 - "}
	if !slices.Equal(got, want) {
		t.Errorf("checks\n got %q\nwant %q", got, want)
	}
	var rs results
	rs.resp3 = rows
	if text := renderTargets(targetChecks(&rs)); !strings.Contains(text, "1 of 3 measured targets met") ||
		!strings.Contains(text, "RESP3 vs RESP2 through shardproxy") {
		t.Errorf("targets table lacks the RESP3 lines:\n%s", text)
	}
}

// TestRESP3RowKeepsGoing runs a RESP3 row against real servers with a proxy
// that refuses HELLO 3 (nutcracker standing in for shardproxy closes the
// connection, as shardproxy without RESP3 answers -NOPROTO): the proxy's
// RESP3 cell fails with redis-benchmark's error text, and the row goes on to
// measure direct Redis in RESP3 and the proxy in RESP2.
func TestRESP3RowKeepsGoing(t *testing.T) {
	nc := testservers.Need(t, "nutcracker")
	b, _ := prepared(t, []string{"-quick", "-n", "500", "-sections", "redis", "-proxy-bin", nc, "-nutcracker-bin", nc}, "redis-server", "redis-benchmark")
	b.o.proxyRESP3 = true // send RESP3 through the stand-in, which refuses it
	start := time.Now()
	text, err := b.resp3Section("RESP3", resp3Cases(b.o.n, true))
	if err != nil {
		t.Fatalf("resp3Section: %v", err)
	}
	r := b.results.resp3[0]
	t.Logf("in %v: direct RESP3 %.0f rps, proxy RESP3 error %v, proxy RESP2 %.0f rps; failures %d",
		time.Since(start).Round(time.Millisecond), r.direct.res.rps, r.proxy.err, r.proxyRESP2.res.rps, len(b.failures))
	if !ok(r.direct) || !ok(r.proxyRESP2) {
		t.Errorf("direct RESP3 %v and proxy RESP2 %v should have run", r.direct.err, r.proxyRESP2.err)
	}
	if r.proxy.err == nil || !strings.Contains(r.proxy.err.Error(), "Server closed the connection") {
		t.Errorf("proxy RESP3 cell error %v, want redis-benchmark's error text", r.proxy.err)
	}
	if len(b.failures) != 1 || !strings.Contains(text, "set P=1 on shardproxy failed: redis-benchmark") {
		t.Errorf("failures %q; table:\n%s", b.failures, text)
	}
}
