package proxy_test

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// liveHeap returns the live heap after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// setHeader is the start of "SET key <value>" with a value of n bytes.
func setHeader(key string, n int) []byte {
	return fmt.Appendf(nil, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n", len(key), key, n)
}

// TestLimitRequestSize checks max_request_size: a request above it gets an
// error and its connection closes; one below it works; other clients never
// notice.
func TestLimitRequestSize(t *testing.T) {
	backends := proxytest.StartRedisBackends(t, 2)
	px := proxytest.StartProxy(t, proxytest.PoolYAML(proxytest.FreeListen(t), backends, "max_request_size: 1048576"))
	addr := px.Addr(0).String()
	other := proxytest.Dial(t, addr)
	tests := []struct {
		name    string
		size    int
		wantErr bool
	}{
		{"900 KB value", 900 << 10, false},
		{"2 MB value", 2 << 20, true},
		{"one byte over", 1<<20 + 1, true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := proxytest.Dial(t, addr)
			key := "big:" + strconv.Itoa(i)
			rc.Write(setHeader(key, tc.size))
			if !tc.wantErr {
				rc.Write(append([]byte(strings.Repeat("x", tc.size)), "\r\n"...))
				if got := rc.Read(); got != "+OK\r\n" {
					t.Fatalf("SET of %d bytes: %q", tc.size, got)
				}
				if got := rc.Do("STRLEN", key); got != ":"+strconv.Itoa(tc.size)+"\r\n" {
					t.Fatalf("STRLEN: %q", got)
				}
			} else {
				// The header alone is refused: the value need not be sent.
				if got := rc.Read(); got != "-ERR Protocol error: invalid bulk length\r\n" {
					t.Fatalf("SET of %d bytes: %q", tc.size, got)
				}
				rc.ExpectClosed()
			}
			if got := other.Do("INCR", "big:other"); got != ":"+strconv.Itoa(i+1)+"\r\n" {
				t.Fatalf("other client: %q", got)
			}
		})
	}
}

// TestLimitHugeBulkRefused checks that a 1 GB bulk header (above the
// default max_request_size) is refused at once, without the proxy's memory
// growing.
func TestLimitHugeBulkRefused(t *testing.T) {
	backends := proxytest.StartRedisBackends(t, 1)
	px := proxytest.StartProxy(t, proxytest.PoolYAML(proxytest.FreeListen(t), backends))
	addr := px.Addr(0).String()
	other := proxytest.Dial(t, addr)
	before := liveHeap()
	rc := proxytest.Dial(t, addr)
	rc.Write([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1073741824\r\n"))
	if got := rc.Read(); got != "-ERR Protocol error: invalid bulk length\r\n" {
		t.Fatalf("1 GB bulk: %q", got)
	}
	rc.ExpectClosed()
	if grown := int64(liveHeap()) - int64(before); grown > 64<<20 {
		t.Errorf("heap grew by %d MB for a refused 1 GB bulk", grown>>20)
	}
	if got := other.Do("PING"); got != "+PONG\r\n" {
		t.Fatalf("other client: %q", got)
	}
}

// TestLimitClaimedSizeNotAllocated checks that a request claiming a large
// size below the limits, of which 1 MB arrives, costs about 1 MB: the
// proxy allocates what a client sends, not what it claims, so many such
// clients cannot exhaust memory.
func TestLimitClaimedSizeNotAllocated(t *testing.T) {
	tests := []struct {
		name   string
		pool   func(t *testing.T) string
		header []byte
	}{
		{"RESP bulk of 500 MB", func(t *testing.T) string {
			return proxytest.PoolYAML(proxytest.FreeListen(t), proxytest.StartRedisBackends(t, 1))
		}, setHeader("k", 500<<20)},
		{"memcache value of 100 MB", func(t *testing.T) string {
			return fmt.Sprintf("mc:\n  listen: %s\n  servers:\n    - %s:1\n", proxytest.FreeListen(t), testservers.Memcached(t).Addr)
		}, []byte("set k 0 0 104857600\r\n")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			px := proxytest.StartProxy(t, tc.pool(t))
			addr := px.Addr(0).String()
			before := liveHeap()
			rc := proxytest.Dial(t, addr)
			rc.Write(tc.header)
			rc.Write([]byte(strings.Repeat("x", 1<<20)))
			time.Sleep(200 * time.Millisecond) // the proxy reads the megabyte
			if grown := int64(liveHeap()) - int64(before); grown > 64<<20 {
				t.Errorf("heap grew by %d MB for a large claim with 1 MB sent", grown>>20)
			}
			rc.Net.Close()
		})
	}
}

// TestLimitArgs checks max_args: a request with more arguments (the
// command name included, as in Redis's multibulk count) is refused and its
// connection closed.
func TestLimitArgs(t *testing.T) {
	backends := proxytest.StartRedisBackends(t, 3)
	px := proxytest.StartProxy(t, proxytest.PoolYAML(proxytest.FreeListen(t), backends, "max_args: 10"))
	addr := px.Addr(0).String()
	keys := func(n int) []string {
		args := []string{"MGET"}
		for i := 0; i < n; i++ {
			args = append(args, "args:"+strconv.Itoa(i))
		}
		return args
	}
	tests := []struct {
		name string
		args []string
		ok   bool
	}{
		{"MGET of 9 keys", keys(9), true},
		{"MGET of 10 keys", keys(10), false},
		{"MGET of 11 keys", keys(11), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := proxytest.Dial(t, addr)
			got := rc.Do(tc.args...)
			if tc.ok {
				if want := "*" + strconv.Itoa(len(tc.args)-1) + "\r\n" + strings.Repeat(proxytest.NilBulk, len(tc.args)-1); got != want {
					t.Fatalf("got %q, want %q", got, want)
				}
				return
			}
			if got != "-ERR Protocol error: invalid multibulk length\r\n" {
				t.Fatalf("got %q, want a protocol error", got)
			}
			rc.ExpectClosed()
		})
	}
}

// TestLimitMemcache checks max_args (keys of one get) and max_request_size
// (largest value) in a memcache pool: refused requests get memcached-style
// errors and the connection stays usable.
func TestLimitMemcache(t *testing.T) {
	backends := []*testservers.Server{testservers.Memcached(t), testservers.Memcached(t)}
	var yaml strings.Builder
	fmt.Fprintf(&yaml, "mc:\n  listen: %s\n  max_args: 3\n  max_request_size: 1024\n  servers:\n", proxytest.FreeListen(t))
	for _, b := range backends {
		fmt.Fprintf(&yaml, "    - %s:1\n", b.Addr)
	}
	px := proxytest.StartProxy(t, yaml.String())
	c := proxytest.Dial(t, px.Addr(0).String())
	value := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name, req, want string
	}{
		{"set of 1024 bytes", "set mc:a 0 0 1024\r\n" + value(1024) + "\r\n", "STORED\r\n"},
		{"set of 1025 bytes", "set mc:b 0 0 1025\r\n" + value(1025) + "\r\n", "SERVER_ERROR object too large for cache\r\n"},
		{"get of 3 keys", "get mc:a mc:b mc:c\r\n", "VALUE mc:a 0 1024\r\n" + value(1024) + "\r\nEND\r\n"},
		{"get of 4 keys", "get mc:a mc:b mc:c mc:d\r\n", "CLIENT_ERROR too many keys\r\n"},
		{"still usable", "get mc:b\r\n", "END\r\n"},
		// As memcached: a set refused as too large removes the old value;
		// other storage commands leave it.
		{"set over an old value", "set mc:a 0 0 1025\r\n" + value(1025) + "\r\n", "SERVER_ERROR object too large for cache\r\n"},
		{"old value gone", "get mc:a\r\n", "END\r\n"},
		{"set again", "set mc:a 0 0 3\r\nabc\r\n", "STORED\r\n"},
		{"replace too large", "replace mc:a 0 0 1025\r\n" + value(1025) + "\r\n", "SERVER_ERROR object too large for cache\r\n"},
		{"old value kept", "get mc:a\r\n", "VALUE mc:a 0 3\r\nabc\r\nEND\r\n"},
		{"noreply set too large", "set mc:a 0 0 1025 noreply\r\n" + value(1025) + "\r\nget mc:a\r\n", "END\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.RoundTrip(tc.req); got != tc.want {
				t.Errorf("got %.200q, want %.200q", got, tc.want)
			}
		})
	}
}
