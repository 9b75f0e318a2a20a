package proxy_test

import (
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// TestMemcacheMemcslap runs libmemcached's memcslap through the proxy. It
// exits 0 even when requests fail, printing "Fatal error ..." lines and
// counting only the keys that succeeded, so the test reads its report.
func TestMemcacheMemcslap(t *testing.T) {
	bin := testservers.Need(t, "memcslap")
	f := proxytest.NewMemcacheFixture(t, 4)
	for _, tc := range []struct {
		test string
		want []string // patterns the report must match
	}{
		{"set", []string{`Time to set\s+10000 keys by\s+20 threads:`}},
		{"get", []string{`Time to set\s+500 keys:`, `Time to get\s+10000 keys by\s+20 threads:`}},
	} {
		t.Run(tc.test, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "--servers="+f.Addr, "--concurrency=20", "--execute-number=500", "--test="+tc.test)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("memcslap --test=%s: %v\n%s", tc.test, err, out)
			}
			report := string(out)
			if strings.Contains(strings.ToLower(report), "error") || strings.Contains(strings.ToLower(report), "failure") {
				t.Errorf("memcslap --test=%s reports failures:\n%.2000s", tc.test, report)
			}
			for _, w := range tc.want {
				if !regexp.MustCompile(w).MatchString(report) {
					t.Errorf("memcslap --test=%s: report does not match %q:\n%s", tc.test, w, report)
				}
			}
		})
	}
	used := 0
	for i, b := range f.Backends {
		if n := currItems(t, b.Addr); n > 0 {
			used++
		} else {
			t.Logf("backend %d (%s) holds no items", i, b.Addr)
		}
	}
	if used < 2 {
		t.Errorf("memcslap's keys landed on %d of %d servers", used, len(f.Backends))
	}
}

// currItems returns memcached's curr_items statistic.
func currItems(t *testing.T, addr string) int {
	t.Helper()
	c := proxytest.Dial(t, addr)
	defer c.Net.Close()
	stats := c.RoundTrip("stats\r\n")
	m := regexp.MustCompile(`STAT curr_items (\d+)\r\n`).FindStringSubmatch(stats)
	if m == nil {
		t.Fatalf("%s: no curr_items in %.300q", addr, stats)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}
