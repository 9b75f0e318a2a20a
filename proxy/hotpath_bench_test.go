package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// benchProxy starts 4 redis-servers and the proxy in front of them and
// returns a raw connection to it.
func benchProxy(b *testing.B) net.Conn {
	b.Helper()
	var lines []string
	for i := 0; i < 4; i++ {
		lines = append(lines, testservers.Redis(b).Addr+":1")
	}
	px := proxytest.StartProxy(b, proxytest.Pool{HashTag: "{}", Servers: lines}.YAML("bench", proxytest.FreeListen(b)))
	return proxytest.DialNet(b, px.Addr(0).String())
}

// benchPipeline sends the same pipeline of 16 requests b.N/16 times and
// reads every reply. allocs/op is the proxy's allocations per request
// (the client side allocates nothing in the loop).
func benchPipeline(b *testing.B, args ...string) { benchPipelineIn(b, false, args...) }

// benchPipelineIn is benchPipeline from a client that said HELLO 3 first
// when resp3.
func benchPipelineIn(b *testing.B, resp3 bool, args ...string) {
	benchPipelineOn(b, benchProxy(b), resp3, args...)
}

// benchPipelineOn is benchPipelineIn on a connection to a proxy of the
// caller's.
func benchPipelineOn(b *testing.B, nc net.Conn, resp3 bool, args ...string) {
	if resp3 {
		c := proxytest.NewConn(b, nc)
		if got := c.DoAny("HELLO", "3"); got[0] != '%' {
			b.Fatalf("HELLO 3: %q", got)
		}
	}
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	var frame []byte
	for i := 0; i < 16; i++ {
		frame = resp.AppendCommand(frame, bs...)
	}
	r := bufio.NewReaderSize(nc, 1<<20)
	buf := make([]byte, 1<<20)
	read := func() {
		n := 0
		for got := 0; got < 16; {
			m, err := r.Read(buf[n:])
			if err != nil && err != io.EOF {
				b.Fatal(err)
			}
			n += m
			for {
				k, err := resp.ReadReply(buf[:n])
				if err != nil {
					b.Fatal(err)
				}
				if k == 0 {
					break
				}
				if resp.IsError(buf[:k]) {
					b.Fatalf("error reply %q", buf[:k])
				}
				copy(buf, buf[k:n])
				n -= k
				got++
				if got == 16 {
					break
				}
			}
		}
	}
	nc.Write(frame) // warm up connections and pools
	read()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 16 {
		if _, err := nc.Write(frame); err != nil {
			b.Fatal(err)
		}
		read()
	}
}

func BenchmarkProxyGet(b *testing.B) { benchPipeline(b, "GET", "key:1") }

func BenchmarkProxySet(b *testing.B) { benchPipeline(b, "SET", "key:1", "value") }

func BenchmarkProxyGet3(b *testing.B) { benchPipelineIn(b, true, "GET", "key:1") }

func BenchmarkProxySet3(b *testing.B) { benchPipelineIn(b, true, "SET", "key:1", "value") }

func BenchmarkProxyMGet10(b *testing.B) {
	args := []string{"MGET"}
	for i := 0; i < 10; i++ {
		args = append(args, fmt.Sprintf("key:%d", i))
	}
	benchPipeline(b, args...)
}

func BenchmarkProxyMSet10(b *testing.B) {
	args := []string{"MSET"}
	for i := 0; i < 10; i++ {
		args = append(args, fmt.Sprintf("key:%d", i), "v")
	}
	benchPipeline(b, args...)
}

// benchCluster returns a raw connection to a cluster pool in front of the
// package's shared cluster.
func benchCluster(b *testing.B) net.Conn {
	addr, _ := proxytest.StartClusterProxy(b, testservers.SharedCluster(b))
	return proxytest.DialNet(b, addr)
}

func BenchmarkProxyClusterGet(b *testing.B) {
	benchPipelineOn(b, benchCluster(b), false, "GET", "key:1")
}

func BenchmarkProxyClusterSet(b *testing.B) {
	benchPipelineOn(b, benchCluster(b), false, "SET", "key:1", "value")
}

// BenchmarkProxyClusterMGet10 reads 10 keys of 10 slots: 10 fragments.
func BenchmarkProxyClusterMGet10(b *testing.B) {
	args := []string{"MGET"}
	for i := 0; i < 10; i++ {
		args = append(args, fmt.Sprintf("key:%d", i))
	}
	benchPipelineOn(b, benchCluster(b), false, args...)
}
