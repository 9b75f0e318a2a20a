package proxy_test

import (
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
)

// TestShutdownAnswersInFlight: Shutdown (SIGINT, SIGTERM) stops accepting
// at once, answers a request already forwarded (a script that runs 300 ms
// on its server), closes an idle client at once, and returns when the
// busy client has its reply, well before its bound.
func TestShutdownAnswersInFlight(t *testing.T) {
	b := proxytest.StartRedisBackends(t, 2)
	listen := proxytest.FreeListen(t)
	px := proxytest.StartProxy(t, proxytest.PoolYAML(listen, b))
	busy, idle := proxytest.Dial(t, listen), proxytest.Dial(t, listen)
	for _, c := range []*proxytest.Conn{busy, idle} {
		if got := c.Do("PING"); got != "+PONG\r\n" {
			t.Fatalf("PING: %q", got)
		}
	}
	// A script busy for 300 ms on the key's server.
	slow := "local t = redis.call('TIME') local s = t[1] * 1000000 + t[2] " +
		"repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - s > 300000 return 'done'"
	busy.Write(proxytest.EncodeCommand(nil, "EVAL", slow, "1", "k"))
	time.Sleep(50 * time.Millisecond) // forwarded, not answered
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- px.Shutdown(5 * time.Second) }()
	if _, err := idle.ReadToEOF(2 * time.Second); err != nil && !proxytest.IsReset(err) {
		t.Fatalf("idle client: %v, want closed at once", err)
	}
	if got := busy.Read(); got != "$4\r\ndone\r\n" {
		t.Fatalf("request in flight at shutdown: %q, want its reply", got)
	}
	if _, err := busy.ReadToEOF(2 * time.Second); err != nil && !proxytest.IsReset(err) {
		t.Fatalf("busy client after its reply: %v, want closed", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Shutdown took %v; it should end once the last reply is written", took)
	}
	if !refused(listen) {
		t.Fatal("the listener still accepts after Shutdown")
	}
}
