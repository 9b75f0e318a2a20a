//go:build linux

package main

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

const csvHeader = `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"` + "\n"

func TestParseRedisCSV(t *testing.T) {
	tests := []struct {
		name      string
		out, want string
		rps, p50  float64
		p99       float64
		lines     int
		wantErr   bool
	}{
		{name: "set", want: "SET", out: csvHeader + `"SET","512820.50","1.300","0.352","1.063","2.199","7.423","7.863"` + "\n",
			rps: 512820.50, p50: 1.063, p99: 7.423, lines: 1},
		{name: "lrange picks its line and counts the fill", want: "LRANGE_100", out: csvHeader +
			`"LPUSH (needed to benchmark LRANGE)","869565.19","0.763","0.256","0.719","1.359","1.551","1.855"` + "\n" +
			`"LRANGE_100 (first 100 elements)","200000.00","3.159","0.400","3.007","5.223","6.127","6.455"` + "\n",
			rps: 200000, p50: 3.007, p99: 6.127, lines: 2},
		{name: "custom mget", want: "MGET", out: csvHeader + `"MGET key:__rand_int__ key:__rand_int__","74349.45","0.355","0.096","0.343","0.471","0.823","1.783"` + "\n",
			rps: 74349.45, p50: 0.343, p99: 0.823, lines: 1},
		{name: "mset line is not set", want: "SET", out: csvHeader + `"MSET (10 keys)","140845.06","5.464","0.632","4.543","11.943","12.439","12.703"` + "\n", wantErr: true},
		{name: "cluster preamble skipped", want: "SET", out: "Cluster has 3 master nodes:\n\nMaster 0: 61937af1 127.0.0.1:23002\n\n" + csvHeader +
			`"SET","79365.08","0.830","0.072","0.535","1.999","6.151","6.247"` + "\n", rps: 79365.08, p50: 0.535, p99: 6.151, lines: 1},
		{name: "header only", want: "SET", out: csvHeader, wantErr: true},
		{name: "empty", want: "SET", out: "", wantErr: true},
		{name: "bad number", want: "GET", out: csvHeader + `"GET","fast","0.720","0.280","0.695","1.023","1.207","1.399"` + "\n", wantErr: true},
		{name: "zero rps", want: "GET", out: csvHeader + `"GET","0.00","0.720","0.280","0.695","1.023","1.207","1.399"` + "\n", wantErr: true},
		{name: "not csv", want: "GET", out: "SET: 1000 requests per second\n", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, lines, err := parseRedisCSV([]byte(tc.out), tc.want)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if res.rps != tc.rps || res.p50 != tc.p50 || res.p99 != tc.p99 || lines != tc.lines || !res.hasLatency {
				t.Errorf("got %+v lines %d, want rps %v p50 %v p99 %v lines %d", res, lines, tc.rps, tc.p50, tc.p99, tc.lines)
			}
		})
	}
}

func TestBenchErrors(t *testing.T) {
	tests := []struct {
		name, stderr string
		wantEmpty    bool
	}{
		{name: "config warning is fine", stderr: "WARNING: Could not fetch server CONFIG\n", wantEmpty: true},
		{name: "nothing", stderr: "", wantEmpty: true},
		{name: "server error", stderr: "Error from server: ERR unknown command 'FOO'\n"},
		{name: "closed", stderr: "Error: Server closed the connection\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := benchErrors([]byte(tc.stderr)); (got == "") != tc.wantEmpty {
				t.Errorf("benchErrors = %q, want empty %v", got, tc.wantEmpty)
			}
		})
	}
}

const memcslapSet = `Time to generate       2000 test keys:                0.006 seconds.
Time to start            50 threads:                  0.002 seconds.
--------------------------------------------------------------------
Time to set          100000 keys by   50 threads:     1.250 seconds.
--------------------------------------------------------------------
Time total:                                           1.362 seconds.
`

const memcslapGet = `Time to generate       2000 test keys:                0.004 seconds.
Time to set            2000 keys:                     0.109 seconds.
Time to start            50 threads:                  0.002 seconds.
--------------------------------------------------------------------
Time to get          100000 keys by   50 threads:     2.000 seconds.
--------------------------------------------------------------------
Time total:                                           1.433 seconds.
`

func TestParseMemcslap(t *testing.T) {
	tests := []struct {
		name, out, test string
		rps             float64
		requests        int64
		wantErr         bool
	}{
		{name: "set", out: memcslapSet, test: "set", rps: 80000, requests: 100000},
		{name: "get counts the load", out: memcslapGet, test: "get", rps: 50000, requests: 102000},
		{name: "wrong test", out: memcslapGet, test: "set", wantErr: true},
		{name: "nothing loaded", out: strings.Replace(memcslapGet, "set            2000 keys", "set               0 keys", 1), test: "get", wantErr: true},
		{name: "zero seconds", out: strings.Replace(memcslapSet, "1.250 seconds", "0.000 seconds", 1), test: "set", wantErr: true},
		{name: "no result line", out: "Time total: 0.1 seconds.\n", test: "set", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := parseMemcslap([]byte(tc.out), tc.test)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if !tc.wantErr && (res.rps != tc.rps || res.requests != tc.requests || res.hasLatency) {
				t.Errorf("got %+v, want rps %v requests %d", res, tc.rps, tc.requests)
			}
		})
	}
}

func TestMemcslapErrors(t *testing.T) {
	failed := strings.Repeat("Fatal error for key 'k': (0x1) CONNECTION FAILURE,  host: 127.0.0.1:1\n", 5) + memcslapGet
	tests := []struct {
		name, out string
		want      string // substring; empty means no error
	}{
		{name: "clean set", out: memcslapSet},
		{name: "clean get", out: memcslapGet},
		{name: "connection failures", out: failed, want: "(5 error lines in all)"},
		{name: "server failure", out: "SERVER HAS FAILED AND IS DISABLED UNTIL TIMED RETRY\n", want: "FAILED"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := memcslapErrors([]byte(tc.out))
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("memcslapErrors = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCPUTicks(t *testing.T) {
	tests := []struct {
		name, stat string
		want       int64
		wantErr    bool
	}{
		{name: "plain", stat: "4242 (nutcracker) S 1 4242 4242 0 -1 4194560 500 0 0 0 731 268 0 0 20 0 1 0 100 1000 200\n", want: 999},
		{name: "parens and spaces in name", stat: "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 1 1 1\n", want: 11},
		{name: "no name", stat: "7 R 1 7 7 0 -1 0 0 0 0 0 5 6 0 0\n", wantErr: true},
		{name: "truncated", stat: "7 (x) R 1 7 7\n", wantErr: true},
		{name: "bad number", stat: "7 (x) R 1 7 7 0 -1 0 0 0 0 0 five 6 0 0 20\n", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cpuTicks([]byte(tc.stat))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("cpuTicks = %d, %v; want %d, err %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestStatusKB(t *testing.T) {
	tests := []struct {
		name, status, field string
		want                int64
		wantErr             bool
	}{
		{name: "present", field: "VmRSS", status: "Name:\tnutcracker\nVmHWM:\t  9000 kB\nVmRSS:\t    5432 kB\nRssAnon:\t 100 kB\n", want: 5432},
		{name: "anonymous", field: "RssAnon", status: "Name:\tnutcracker\nVmHWM:\t  9000 kB\nVmRSS:\t    5432 kB\nRssAnon:\t 100 kB\n", want: 100},
		{name: "missing", field: "VmRSS", status: "Name:\tzombie\nState:\tZ (zombie)\n", wantErr: true},
		{name: "odd unit", field: "VmRSS", status: "VmRSS:\t5432 MB\n", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := statusKB([]byte(tc.status), tc.field)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("statusKB(%s) = %d, %v; want %d, err %v", tc.field, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestClockTicks(t *testing.T) {
	if hz := clockTicks(); hz < 1 || hz > 10000 {
		t.Errorf("clockTicks = %d", hz)
	}
}

func TestMerge(t *testing.T) {
	run := func(rps, p50, p99 float64, cpu time.Duration, reqs int64) cell {
		return cell{ran: true, hasCPU: true, cpu: cpu, res: runResult{rps: rps, p50: p50, p99: p99, hasLatency: true, requests: reqs}}
	}
	tick := time.Second / time.Duration(clockTicks())
	boom := errors.New("boom")
	tests := []struct {
		name         string
		runs         []cell
		rps, p99     float64
		cpuPerReq    float64
		coarse, fail bool
	}{
		{name: "median of three, cpu from totals", runs: []cell{run(100, 1, 9, 100*tick, 1000), run(300, 3, 7, 100*tick, 1000), run(200, 2, 8, 100*tick, 2000)},
			rps: 200, p99: 8, cpuPerReq: float64((300 * tick).Microseconds()) / 4000},
		{name: "even count averages the middle", runs: []cell{run(100, 1, 2, 50*tick, 10), run(200, 1, 4, 50*tick, 10)},
			rps: 150, p99: 3, cpuPerReq: float64((100 * tick).Microseconds()) / 20},
		{name: "few ticks are coarse", runs: []cell{run(100, 1, 2, tick, 10)}, rps: 100, p99: 2,
			cpuPerReq: float64(tick.Microseconds()) / 10, coarse: true},
		{name: "a failed run fails the cell", runs: []cell{run(100, 1, 2, tick, 10), {ran: true, err: boom}}, fail: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := merge(tc.runs)
			if tc.fail {
				if !errors.Is(m.err, boom) {
					t.Fatalf("err = %v, want boom", m.err)
				}
				return
			}
			got, ok := m.cpuPerReq()
			if m.res.rps != tc.rps || m.res.p99 != tc.p99 || !ok || got != tc.cpuPerReq || m.coarse != tc.coarse {
				t.Errorf("merge = %+v (cpu/req %v %v), want rps %v p99 %v cpu/req %v coarse %v", m, got, ok, tc.rps, tc.p99, tc.cpuPerReq, tc.coarse)
			}
		})
	}
	if m := merge(nil); m.ran {
		t.Errorf("merge(nil) = %+v, want not ran", m)
	}
}

func TestSourceAddrs(t *testing.T) {
	tests := []struct {
		name      string
		n, ports  int
		wantCount int
	}{
		{name: "ample range", n: 10000, ports: 28232, wantCount: 0},
		{name: "unknown range", n: 10000, ports: 0, wantCount: 0},
		{name: "narrow range", n: 10000, ports: 4000, wantCount: 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := sourceAddrs(tc.n, tc.ports)
			if len(got) != tc.wantCount {
				t.Fatalf("got %d addresses, want %d", len(got), tc.wantCount)
			}
			for _, a := range got {
				if !a.IP.IsLoopback() || a.IP.Equal(net.IPv4(127, 0, 0, 1)) {
					t.Errorf("source %v is not a spare loopback address", a)
				}
			}
		})
	}
}
