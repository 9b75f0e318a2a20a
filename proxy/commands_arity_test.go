package proxy_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
)

// TestWrongArityAnswersAsRedis sends every command a real redis-server knows
// with one argument too few, and those of a fixed arity with one too many,
// to the proxy and to the server: wherever the proxy serves the command
// (forwarded or answered itself) its reply is the server's own
// "-ERR wrong number of arguments for '<cmd>' command" (not a complaint
// about its keys), and the connection stays open.
func TestWrongArityAnswersAsRedis(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 2, proxytest.Pool{HashTag: "{}"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	info, err := proxytest.NewGoRedis(t, f.Backends[0].Addr).Command(ctx).Result()
	if err != nil {
		t.Fatalf("COMMAND: %v", err)
	}
	names := make([]string, 0, len(info))
	for name := range info {
		names = append(names, name)
	}
	slices.Sort(names)
	px := proxytest.Dial(t, f.Addr)
	direct := proxytest.Dial(t, f.Backends[0].Addr)
	request := func(name string, n int) []string {
		req := []string{name}
		for i := 1; i < n; i++ {
			req = append(req, fmt.Sprintf("arg%x", uint32(i)*2654435761)) // keys on different servers, likely
		}
		return req
	}
	checked := 0
	for _, name := range names {
		arity := int(info[name].Arity)
		var reqs [][]string
		if arity >= 2 || arity <= -2 {
			reqs = append(reqs, request(name, max(arity, -arity)-1))
		}
		if arity > 0 {
			reqs = append(reqs, request(name, arity+1))
		}
		for _, req := range reqs {
			got := px.Do(req...)
			if strings.Contains(got, "is not supported by the proxy") || strings.HasPrefix(got, "-ERR unknown command") {
				continue
			}
			want := direct.Do(req...)
			// EXEC's is Redis's one other answer: it ends the
			// transaction (-EXECABORT ... because of: wrong number ...).
			if !strings.HasPrefix(want, "-ERR wrong number of arguments") && !strings.HasPrefix(want, "-EXECABORT Transaction discarded because of: wrong number of arguments") {
				t.Errorf("%q: the server answers %q", req, want)
			}
			if got != want {
				t.Errorf("%q: the proxy answers %q, the server %q", req, got, want)
			}
			if pong := px.Do("PING"); pong != "+PONG\r\n" {
				t.Fatalf("%q: then PING answers %q", req, pong)
			}
			checked++
		}
	}
	if checked < 200 {
		t.Errorf("only %d requests checked", checked)
	}
}
