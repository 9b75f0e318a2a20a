package proxy_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/proxy"
)

// unreadPipeline writes n GETs of keys key:0 ... key:(keys-1) to c in one
// write, before reading anything, as redis-py's pipeline.execute() and
// Jedis pipelines do. It returns the write's error.
func unreadPipeline(c net.Conn, n, keys int, tail ...string) error {
	var req []byte
	for i := 0; i < n; i++ {
		req = encodeCommand(req, "GET", fmt.Sprintf("key:%d", i%keys))
	}
	for _, t := range tail {
		req = encodeCommand(req, t)
	}
	c.SetWriteDeadline(time.Now().Add(60 * time.Second))
	_, err := c.Write(req)
	return err
}

// TestPipelineWrittenBeforeRead: a client that writes a pipeline of
// 200,000 GETs of 100-byte values (about 7 MB of requests, 22 MB of
// replies) before it reads any reply gets every reply, in order. Before the
// proxy kept reading while replies waited, it stopped reading requests once
// its reply write blocked, the client blocked writing its requests, and
// neither went on until client_write_timeout cut the client off.
func TestPipelineWrittenBeforeRead(t *testing.T) {
	backends := startRedisBackends(t, 2)
	pki := newPKI(t, "proxy")
	plain, secure := freeListen(t), freeListen(t)
	rp := pool{servers: serverLines(backends, nil, nil)}
	startProxy(t, rp.yaml("plain", plain)+poolYAML(secure, backends, "tls_cert_file: "+pki.ServerCert, "tls_key_file: "+pki.ServerKey))
	const keys, n = 1000, 200000
	values := make([]string, keys)
	setup := dialClient(t, plain)
	for i := range values {
		values[i] = strings.Repeat(string(rune('a'+i%26)), 90) + fmt.Sprintf("%010d", i)
		if got := setup.do("SET", fmt.Sprintf("key:%d", i), values[i]); got != "+OK\r\n" {
			t.Fatalf("SET: %q", got)
		}
	}
	dialPlain := func(t *testing.T) net.Conn { return dialConn(t, plain) }
	dialTLS := func(t *testing.T) net.Conn {
		nc, err := tls.Dial("tcp", secure, pki.clientConfig(false))
		if err != nil {
			t.Fatalf("TLS dial: %v", err)
		}
		return nc
	}
	for _, tc := range []struct {
		name string
		dial func(t *testing.T) net.Conn
		tail []string // sent after the GETs, in the same write
	}{
		{"read after write", dialPlain, nil},
		{"QUIT at the end", dialPlain, []string{"QUIT"}},
		{"TLS", dialTLS, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.dial(t)
			defer c.Close()
			start := time.Now()
			if err := unreadPipeline(c, n, keys, tc.tail...); err != nil {
				t.Fatalf("writing the pipeline before reading: %v (the proxy stopped reading)", err)
			}
			wrote := time.Since(start)
			c.SetReadDeadline(time.Now().Add(60 * time.Second))
			br := bufio.NewReaderSize(c, 64<<10)
			for i := 0; i < n; i++ {
				rep, err := readReply(br)
				if err != nil {
					t.Fatalf("reply %d: %v", i, err)
				}
				if got, want := rep.raw, bulk(values[i%keys]); got != want {
					t.Fatalf("reply %d: got %q, want %q", i, got, want)
				}
			}
			if tc.tail != nil {
				if rep, err := readReply(br); err != nil || rep.raw != "+OK\r\n" {
					t.Fatalf("QUIT: %q, %v", rep.raw, err)
				}
				if _, err := br.ReadByte(); err != io.EOF {
					t.Fatalf("after QUIT: %v, want EOF", err)
				}
			}
			t.Logf("%d GETs written in %v, all replies read after %v", n, wrote.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestClientOutputLimit: a client holding more unread replies than
// client_output_limit is closed, counted in client_overflow, and other
// clients of the pool do not notice.
func TestClientOutputLimit(t *testing.T) {
	backends := startRedisBackends(t, 2)
	listen := freeListen(t)
	yaml := poolYAML(listen, backends, "client_output_limit: 1048576")
	px := startProxyOpts(t, yaml, proxy.Options{StatsAddr: "127.0.0.1:0"})
	setup := dialClient(t, listen)
	value := strings.Repeat("v", 1000)
	for i := 0; i < 100; i++ {
		setup.do("SET", fmt.Sprintf("key:%d", i), value)
	}

	// Another client works all along.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var otherErr error
	var otherN int
	wg.Add(1)
	go func() {
		defer wg.Done()
		rc := dialClient(t, listen)
		for {
			select {
			case <-stop:
				return
			default:
			}
			k := fmt.Sprintf("other:%d", otherN)
			if got := rc.do("SET", k, "x"); got != "+OK\r\n" {
				otherErr = fmt.Errorf("SET %s: %q", k, got)
				return
			}
			if got := rc.do("GET", k); got != bulk("x") {
				otherErr = fmt.Errorf("GET %s: %q", k, got)
				return
			}
			otherN++
		}
	}()

	// 20,000 GETs of 1 KB: 20 MB of replies, far over the 1 MB limit.
	c := dialConn(t, listen)
	defer c.Close()
	werr := make(chan error, 1)
	go func() { werr <- unreadPipeline(c, 20000, 100) }()
	select {
	case <-werr:
	case <-time.After(30 * time.Second):
		t.Fatal("the pipeline's write still blocks after 30 s: the client was not closed")
	}
	// The client reads nothing until the proxy has given up on it.
	deadline := time.Now().Add(20 * time.Second)
	for poolStat(t, px, "client_overflow") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("client_overflow still 0 after 20 s of a client not reading 20 MB of replies")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// What the client reads ends: it was closed.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	read, err := io.Copy(io.Discard, c)
	if err != nil && !isReset(err) {
		t.Fatalf("reading the closed client: %v after %d bytes", err, read)
	}
	if read >= 20000*1000 {
		t.Fatalf("the client read all %d bytes of replies; it should have been closed", read)
	}
	close(stop)
	wg.Wait()
	if otherErr != nil {
		t.Fatalf("another client noticed: %v", otherErr)
	}
	if otherN == 0 {
		t.Fatal("the other client made no progress")
	}
	if got := poolStat(t, px, "client_overflow"); got != 1 {
		t.Fatalf("client_overflow = %v, want 1", got)
	}
	t.Logf("closed after %d bytes of replies; the other client did %d SET+GET meanwhile", read, otherN)
}
