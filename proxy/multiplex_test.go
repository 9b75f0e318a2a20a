package proxy_test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// dialMany opens n connections to addr, a few at a time.
func dialMany(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int)
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err != nil {
					errs <- err
					continue
				}
				conns[i] = c
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatalf("dialing %d clients: %v", n, err)
	}
	return conns
}

// clientExchange has client i do a few SET/GET/MGET/INCR and checks the
// replies.
func clientExchange(c net.Conn, i int) error {
	c.SetDeadline(time.Now().Add(60 * time.Second))
	k, other := fmt.Sprintf("%d:mx", i), fmt.Sprintf("%d:mx", (i+1)%7)
	var req []byte
	req = proxytest.EncodeCommand(req, "SET", k, fmt.Sprint(i))
	req = proxytest.EncodeCommand(req, "GET", k)
	req = proxytest.EncodeCommand(req, "SET", k+":b", "b")
	req = proxytest.EncodeCommand(req, "MGET", k, k+":b", "mx:none")
	req = proxytest.EncodeCommand(req, "INCR", "mx:counter")
	req = proxytest.EncodeCommand(req, "GET", other)
	want := []string{"+OK\r\n", proxytest.Bulk(fmt.Sprint(i)), "+OK\r\n", proxytest.Array(proxytest.Bulk(fmt.Sprint(i)), proxytest.Bulk("b"), proxytest.NilBulk)}
	if _, err := c.Write(req); err != nil {
		return err
	}
	r := bufio.NewReaderSize(c, 512)
	for j := 0; j < 6; j++ {
		rep, err := proxytest.ReadReply(r)
		if err != nil {
			return fmt.Errorf("client %d reply %d: %w", i, j, err)
		}
		got := rep.Raw
		switch {
		case j < len(want) && got != want[j]:
			return fmt.Errorf("client %d reply %d: %q, want %q", i, j, got, want[j])
		case j == 4 && !strings.HasPrefix(got, ":"):
			return fmt.Errorf("client %d INCR: %q", i, got)
		case j == 5 && !strings.HasPrefix(got, "$"):
			return fmt.Errorf("client %d GET %s: %q", i, other, got)
		}
	}
	return nil
}

// proxyConnections counts the connections a backend has, other than the
// one asking.
func proxyConnections(t *testing.T, addr string) int {
	t.Helper()
	list, err := testservers.Do(addr, "CLIENT", "LIST")
	if err != nil {
		t.Fatalf("CLIENT LIST on %s: %v", addr, err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		if strings.Contains(line, "addr=") && !strings.Contains(line, "cmd=client|list") {
			n++
		}
	}
	return n
}

// TestManyClientsFewServerConnections connects 5,000 clients at once, has
// each do a few commands concurrently, and checks that every backend sees
// exactly server_connections connections from the proxy.
func TestManyClientsFewServerConnections(t *testing.T) {
	const clients, files = 5000, 2*5000 + 1000
	if got := proxytest.RaiseFileLimit(t, files); got < files {
		t.Skipf("need %d open files, RLIMIT_NOFILE is %d and cannot be raised", files, got)
	}
	for _, serverConns := range []int{1, 2} {
		t.Run(fmt.Sprintf("server_connections %d", serverConns), func(t *testing.T) {
			f := proxytest.NewRedisFixture(t, 4, proxytest.Pool{ServerConnections: serverConns})
			conns := dialMany(t, f.Addr, clients)
			var wg sync.WaitGroup
			start := make(chan struct{})
			errs := make(chan error, clients)
			for i, c := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					if err := clientExchange(c, i); err != nil {
						errs <- err
					}
				}()
			}
			close(start)
			wg.Wait()
			close(errs)
			nerr := 0
			for err := range errs {
				if nerr++; nerr <= 5 {
					t.Error(err)
				}
			}
			if nerr > 0 {
				t.Fatalf("%d of %d clients failed", nerr, clients)
			}
			if r := proxytest.Dial(t, f.Addr).Do("GET", "mx:counter"); r != proxytest.Bulk(fmt.Sprint(clients)) {
				t.Errorf("counter after %d INCRs: %q", clients, r)
			}
			for _, b := range f.Backends {
				if n := proxyConnections(t, b.Addr); n != serverConns {
					t.Errorf("server %s has %d connections with %d clients connected; want server_connections = %d",
						b.Addr, n, clients, serverConns)
				}
			}
		})
	}
}
