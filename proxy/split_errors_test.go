package proxy_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// TestSplitCommandPartFails: when one part of a split DEL or UNLINK fails
// on its server (here a read-only replica answers -READONLY), the client
// gets that part's own error, the parts other servers ran have taken
// effect, and the connection stays usable; EXISTS and TOUCH, which a
// replica serves, are summed over every part. The README documents this.
func TestSplitCommandPartFails(t *testing.T) {
	primary := proxytest.StartRedisBackends(t, 2)
	writable := primary[0]
	replica := proxytest.StartRedisBackends(t, 1, "--replicaof", primary[1].Host, strconv.Itoa(primary[1].Port))[0]
	listen := proxytest.FreeListen(t)
	rp := proxytest.Pool{Servers: proxytest.ServerLines([]*testservers.Server{writable, replica}, nil, nil)}
	proxytest.StartProxy(t, rp.YAML("alpha", listen))
	rc := proxytest.Dial(t, listen)

	var keys []string
	for i := 0; i < 40; i++ {
		keys = append(keys, fmt.Sprintf("%d:split", i)) // varied first bytes spread over the ring
	}
	for _, cmd := range []string{"DEL", "UNLINK"} {
		t.Run(cmd, func(t *testing.T) {
			for _, k := range keys {
				rc.Do("SET", k, "v") // the replica's keys answer -READONLY
			}
			onWritable := proxytest.Dbsize(t, writable.Addr)
			if onWritable == 0 || onWritable == len(keys) {
				t.Fatalf("%d of %d keys on the writable server: the test needs both servers", onWritable, len(keys))
			}
			if got := rc.Do(append([]string{"EXISTS"}, keys...)...); got != ":"+strconv.Itoa(onWritable)+"\r\n" {
				t.Fatalf("EXISTS over both servers: %q, want :%d", got, onWritable)
			}
			if got := rc.Do(append([]string{"TOUCH"}, keys...)...); got != ":"+strconv.Itoa(onWritable)+"\r\n" {
				t.Fatalf("TOUCH over both servers: %q, want :%d", got, onWritable)
			}
			got := rc.Do(append([]string{cmd}, keys...)...)
			if !strings.HasPrefix(got, "-READONLY ") {
				t.Fatalf("%s with a part on a replica: %q, want the replica's -READONLY", cmd, got)
			}
			if n := proxytest.Dbsize(t, writable.Addr); n != 0 {
				t.Fatalf("%s: %d keys left on the writable server; its part should have run", cmd, n)
			}
			if got := rc.Do("PING"); got != "+PONG\r\n" {
				t.Fatalf("PING after the failed part: %q", got)
			}
		})
	}
}
