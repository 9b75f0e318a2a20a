package proxy_test

import (
	"testing"
	"time"
)

// TestShutdownAnswersInFlight: Shutdown (SIGINT, SIGTERM) stops accepting
// at once, answers a request already forwarded (a script that runs 300 ms
// on its server), closes an idle client at once, and returns when the
// busy client has its reply, well before its bound.
func TestShutdownAnswersInFlight(t *testing.T) {
	b := startRedisBackends(t, 2)
	listen := freeListen(t)
	px := startProxy(t, poolYAML(listen, b))
	busy, idle := dialClient(t, listen), dialClient(t, listen)
	for _, c := range []*clientConn{busy, idle} {
		if got := c.do("PING"); got != "+PONG\r\n" {
			t.Fatalf("PING: %q", got)
		}
	}
	// A script busy for 300 ms on the key's server.
	slow := "local t = redis.call('TIME') local s = t[1] * 1000000 + t[2] " +
		"repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - s > 300000 return 'done'"
	busy.write(encodeCommand(nil, "EVAL", slow, "1", "k"))
	time.Sleep(50 * time.Millisecond) // forwarded, not answered
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- px.Shutdown(5 * time.Second) }()
	if _, err := idle.readToEOF(2 * time.Second); err != nil && !isReset(err) {
		t.Fatalf("idle client: %v, want closed at once", err)
	}
	if got := busy.read(); got != "$4\r\ndone\r\n" {
		t.Fatalf("request in flight at shutdown: %q, want its reply", got)
	}
	if _, err := busy.readToEOF(2 * time.Second); err != nil && !isReset(err) {
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
