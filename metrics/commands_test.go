package metrics_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// commandSeries returns the lines of a scrape that belong to the
// shardproxy_command_ metrics, histogram buckets left out, in the order of
// the scrape.
func commandSeries(text string) string {
	var b strings.Builder
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "shardproxy_command_") && !strings.HasPrefix(l, "shardproxy_command_duration_seconds_bucket") &&
			!strings.HasPrefix(l, "shardproxy_command_duration_seconds_sum") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// bucket returns the cumulative count of a command's latency bucket le.
func bucket(t *testing.T, text, pool, command, le string) int {
	t.Helper()
	re := regexp.MustCompile(fmt.Sprintf(`(?m)^shardproxy_command_duration_seconds_bucket\{command="%s",pool="%s",le="%s"\} (\d+)$`,
		regexp.QuoteMeta(command), regexp.QuoteMeta(pool), regexp.QuoteMeta(le)))
	m := re.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no bucket le=%s of %s in pool %s", le, command, pool)
	}
	var n int
	fmt.Sscan(m[1], &n)
	return n
}

// TestCommandOutcomes sends known traffic through two pools, alpha over
// two redis-servers and beta over an address where nothing listens, and
// compares the exposition of the per-command series with it: requests;
// errors, for a wrong number of arguments and an unknown command (the
// proxy's own replies), a server's error reply (INCR of a string), and
// forwarding errors (beta's server refuses connections), alone and within
// a pipeline, and a subscribed client's refused GET; latency histograms
// that count every request. A BLPOP that
// times out after 300 ms lands in the bucket (0.25 s, 0.5 s]: the latency
// runs from the request's read to its reply's write.
func TestCommandOutcomes(t *testing.T) {
	alpha := []string{testservers.Redis(t).Addr, testservers.Redis(t).Addr}
	la, lb := proxytest.FreeListen(t), proxytest.FreeListen(t)
	nowhere := proxytest.FreeListen(t)
	_, maddr := startProxy(t, redisPool("alpha", la, alpha)+redisPool("beta", lb, []string{nowhere}))

	a := proxytest.Dial(t, la)
	for i := range 3 {
		if r := a.Do("SET", fmt.Sprintf("k%d", i), "v"); r != "+OK\r\n" {
			t.Fatalf("SET: %q", r)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"GET", "k0"}, "$1\r\nv\r\n"},
		{[]string{"GET"}, "-ERR wrong number of arguments for 'get' command\r\n"},
		{[]string{"SET", "k0"}, "-ERR wrong number of arguments for 'set' command\r\n"},
		{[]string{"INCR", "k0"}, "-ERR value is not an integer or out of range\r\n"},
		{[]string{"INCR", "n"}, ":1\r\n"},
		{[]string{"NOSUCHCOMMAND", "x"}, "-ERR unknown command 'NOSUCHCOMMAND', with args beginning with: 'x' \r\n"},
		{[]string{"BLPOP", "empty", "0.3"}, "*-1\r\n"},
	} {
		if r := a.Do(c.args...); r != c.want {
			t.Fatalf("%q: %q, want %q", c.args, r, c.want)
		}
	}
	// One batch: errors between successes, counted per command.
	replies := proxytest.Pipeline(t, la, [][]string{{"GET", "k1"}, {"GET"}, {"INCR", "k1"}, {"INCR", "n"},
		{"NOSUCHCOMMAND"}, {"GET", "k2"}, {"GET", "k9"}})
	if want := []string{"$1\r\nv\r\n", "-ERR wrong number of arguments for 'get' command\r\n",
		"-ERR value is not an integer or out of range\r\n", ":2\r\n",
		"-ERR unknown command 'NOSUCHCOMMAND', with args beginning with: \r\n", "$1\r\nv\r\n", "$-1\r\n"}; strings.Join(replies, "") != strings.Join(want, "") {
		t.Fatalf("pipeline: %q, want %q", replies, want)
	}

	// A subscribed RESP2 client is answered by replies written one by
	// one: a refused GET is an error, SUBSCRIBE and PING are not.
	sub := proxytest.Dial(t, la)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"SUBSCRIBE", "ch"}, "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"},
		{[]string{"GET", "k0"}, "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"},
		{[]string{"PING"}, "*2\r\n$4\r\npong\r\n$0\r\n\r\n"},
	} {
		if r := sub.Do(c.args...); r != c.want {
			t.Fatalf("subscribed %q: %q, want %q", c.args, r, c.want)
		}
	}

	b := proxytest.Dial(t, lb)
	for _, args := range [][]string{{"GET", "x"}, {"SET", "x", "v"}, {"SET", "y", "v"}} {
		if r := b.Do(args...); !strings.HasPrefix(r, "-ERR ") {
			t.Fatalf("%q to a server that refuses connections: %q", args, r)
		}
	}
	if r := b.Do("PING"); r != "+PONG\r\n" {
		t.Fatalf("PING: %q", r)
	}

	text, _ := scrape(t, maddr)
	promtoolCheck(t, text)
	want := `shardproxy_command_duration_seconds_count{command="blpop",pool="alpha"} 1
shardproxy_command_duration_seconds_count{command="get",pool="alpha"} 7
shardproxy_command_duration_seconds_count{command="get",pool="beta"} 1
shardproxy_command_duration_seconds_count{command="incr",pool="alpha"} 4
shardproxy_command_duration_seconds_count{command="ping",pool="alpha"} 1
shardproxy_command_duration_seconds_count{command="ping",pool="beta"} 1
shardproxy_command_duration_seconds_count{command="set",pool="alpha"} 4
shardproxy_command_duration_seconds_count{command="set",pool="beta"} 2
shardproxy_command_duration_seconds_count{command="subscribe",pool="alpha"} 1
shardproxy_command_duration_seconds_count{command="unknown",pool="alpha"} 2
shardproxy_command_errors_total{command="blpop",pool="alpha"} 0
shardproxy_command_errors_total{command="get",pool="alpha"} 3
shardproxy_command_errors_total{command="get",pool="beta"} 1
shardproxy_command_errors_total{command="incr",pool="alpha"} 2
shardproxy_command_errors_total{command="ping",pool="alpha"} 0
shardproxy_command_errors_total{command="ping",pool="beta"} 0
shardproxy_command_errors_total{command="set",pool="alpha"} 1
shardproxy_command_errors_total{command="set",pool="beta"} 2
shardproxy_command_errors_total{command="subscribe",pool="alpha"} 0
shardproxy_command_errors_total{command="unknown",pool="alpha"} 2
shardproxy_command_requests_total{command="blpop",pool="alpha"} 1
shardproxy_command_requests_total{command="get",pool="alpha"} 7
shardproxy_command_requests_total{command="get",pool="beta"} 1
shardproxy_command_requests_total{command="incr",pool="alpha"} 4
shardproxy_command_requests_total{command="ping",pool="alpha"} 1
shardproxy_command_requests_total{command="ping",pool="beta"} 1
shardproxy_command_requests_total{command="set",pool="alpha"} 4
shardproxy_command_requests_total{command="set",pool="beta"} 2
shardproxy_command_requests_total{command="subscribe",pool="alpha"} 1
shardproxy_command_requests_total{command="unknown",pool="alpha"} 2
`
	if got := commandSeries(text); got != want {
		t.Errorf("command series:\n%s\nwant:\n%s", got, want)
	}
	for _, c := range []struct {
		pool, command string
		n             int
	}{{"alpha", "get", 7}, {"alpha", "set", 4}, {"beta", "set", 2}} {
		if got := bucket(t, text, c.pool, c.command, "+Inf"); got != c.n {
			t.Errorf("%s %s: bucket +Inf %d, want %d", c.pool, c.command, got, c.n)
		}
	}
	if lo, hi := bucket(t, text, "alpha", "blpop", "0.25"), bucket(t, text, "alpha", "blpop", "0.5"); lo != 0 || hi != 1 {
		t.Errorf("BLPOP of 300 ms: %d requests within 0.25 s, %d within 0.5 s; want 0 and 1", lo, hi)
	}
	// GET, SET and PING over loopback take well under 250 ms.
	if got := bucket(t, text, "alpha", "get", "0.25"); got != 7 {
		t.Errorf("GET: %d of 7 requests within 0.25 s", got)
	}
}
