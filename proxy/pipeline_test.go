package proxy_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
)

// model is what one client expects its keys to hold; it generates random
// commands together with their exact expected replies.
type model struct {
	rng      *rand.Rand
	prefix   string
	nkeys    int
	strings  map[string]string
	counters map[string]int
}

func newModel(seed uint64, prefix string, nkeys int) *model {
	return &model{rng: rand.New(rand.NewPCG(seed, 1)), prefix: prefix, nkeys: nkeys,
		strings: map[string]string{}, counters: map[string]int{}}
}

// key returns one of the client's keys. The varying part comes first: with
// nutcracker's fnv1a_64, keys that differ only in their last bytes hash
// close together and may all land on one server.
func (m *model) key() string { return fmt.Sprintf("k%d:%s", m.rng.IntN(m.nkeys), m.prefix) }

func (m *model) get(k string) string {
	if v, ok := m.strings[k]; ok {
		return proxytest.Bulk(v)
	}
	return proxytest.NilBulk
}

// next returns a random command and the reply it must get. kinds limits
// the choice to the first kinds command kinds (3: SET, GET, MGET).
func (m *model) next(kinds int) ([]string, string) {
	switch m.rng.IntN(kinds) {
	case 0:
		k, v := m.key(), strconv.Itoa(m.rng.IntN(1e6))
		m.strings[k] = v
		return []string{"SET", k, v}, "+OK\r\n"
	case 1:
		k := m.key()
		return []string{"GET", k}, m.get(k)
	case 2:
		args, elems := []string{"MGET"}, []string{}
		for n := 1 + m.rng.IntN(8); n > 0; n-- {
			k := m.key()
			args, elems = append(args, k), append(elems, m.get(k))
		}
		return args, proxytest.Array(elems...)
	case 3:
		args := []string{"MSET"}
		for n := 1 + m.rng.IntN(5); n > 0; n-- {
			k, v := m.key(), fmt.Sprintf("m%d", m.rng.IntN(1000))
			args = append(args, k, v)
			m.strings[k] = v
		}
		return args, "+OK\r\n"
	case 4:
		args, n := []string{"DEL"}, 0
		for i := 1 + m.rng.IntN(4); i > 0; i-- {
			k := m.key()
			args = append(args, k)
			if _, ok := m.strings[k]; ok {
				delete(m.strings, k)
				n++
			}
		}
		return args, fmt.Sprintf(":%d\r\n", n)
	case 5:
		args, n := []string{"EXISTS"}, 0
		for i := 1 + m.rng.IntN(6); i > 0; i-- {
			k := m.key()
			args = append(args, k)
			if _, ok := m.strings[k]; ok {
				n++
			}
		}
		return args, fmt.Sprintf(":%d\r\n", n)
	case 6:
		k := fmt.Sprintf("c%d:%s", m.rng.IntN(4), m.prefix)
		m.counters[k]++
		return []string{"INCR", k}, fmt.Sprintf(":%d\r\n", m.counters[k])
	default:
		k, v := m.key(), "+x"
		m.strings[k] += v
		return []string{"APPEND", k, v}, fmt.Sprintf(":%d\r\n", len(m.strings[k]))
	}
}

// script returns n commands and their expected replies.
func (m *model) script(n, kinds int) ([][]string, []string) {
	cmds, want := make([][]string, n), make([]string, n)
	for i := range cmds {
		cmds[i], want[i] = m.next(kinds)
	}
	return cmds, want
}

// TestPipelineTenThousand writes 10,000 SET/GET/MGET commands across the
// shards in one write and checks every reply.
func TestPipelineTenThousand(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 4, proxytest.Pool{})
	m := newModel(1, "big", 500)
	cmds, want := m.script(10000, 3)
	got := proxytest.Pipeline(t, f.Addr, cmds)
	bad := 0
	for i := range want {
		if got[i] != want[i] {
			if bad++; bad <= 5 {
				t.Errorf("command %d %q: %q, want %q", i, cmds[i], got[i], want[i])
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d replies wrong", bad, len(want))
	}
	for _, b := range f.Backends {
		if proxytest.Dbsize(t, b.Addr) == 0 {
			t.Errorf("server %s got no keys", b.Addr)
		}
	}
}

// TestPipelineConcurrentClients runs 50 clients at once, each pipelining
// rounds of random commands on keys of its own, and checks every reply
// against what that client wrote.
func TestPipelineConcurrentClients(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 4, proxytest.Pool{ServerConnections: 2})
	const clients, rounds, perRound = 50, 4, 250
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := newModel(uint64(c), fmt.Sprintf("cl%d", c), 40)
			for r := 0; r < rounds; r++ {
				cmds, want := m.script(perRound, 8)
				got, err := proxytest.PipelineErr(f.Addr, cmds)
				if err != nil {
					t.Errorf("client %d round %d: %v", c, r, err)
					return
				}
				for i := range want {
					if got[i] != want[i] {
						t.Errorf("client %d round %d command %q: %q, want %q", c, r, cmds[i], got[i], want[i])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

// unreadPipeline writes n GETs of keys key:0 ... key:(keys-1) to c in one
// write, before reading anything, as redis-py's pipeline.execute() and
// Jedis pipelines do. It returns the write's error.
func unreadPipeline(c net.Conn, n, keys int, tail ...string) error {
	var req []byte
	for i := 0; i < n; i++ {
		req = proxytest.EncodeCommand(req, "GET", fmt.Sprintf("key:%d", i%keys))
	}
	for _, t := range tail {
		req = proxytest.EncodeCommand(req, t)
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
	backends := proxytest.StartRedisBackends(t, 2)
	pki := proxytest.NewPKI(t, "proxy")
	plain, secure := proxytest.FreeListen(t), proxytest.FreeListen(t)
	rp := proxytest.Pool{Servers: proxytest.ServerLines(backends, nil, nil)}
	proxytest.StartProxy(t, rp.YAML("plain", plain)+proxytest.PoolYAML(secure, backends, "tls_cert_file: "+pki.ServerCert, "tls_key_file: "+pki.ServerKey))
	const keys, n = 1000, 200000
	values := make([]string, keys)
	setup := proxytest.Dial(t, plain)
	for i := range values {
		values[i] = strings.Repeat(string(rune('a'+i%26)), 90) + fmt.Sprintf("%010d", i)
		if got := setup.Do("SET", fmt.Sprintf("key:%d", i), values[i]); got != "+OK\r\n" {
			t.Fatalf("SET: %q", got)
		}
	}
	dialPlain := func(t *testing.T) net.Conn { return proxytest.DialNet(t, plain) }
	dialTLS := func(t *testing.T) net.Conn {
		nc, err := tls.Dial("tcp", secure, pki.ClientConfig(false))
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
				rep, err := proxytest.ReadReply(br)
				if err != nil {
					t.Fatalf("reply %d: %v", i, err)
				}
				if got, want := rep.Raw, proxytest.Bulk(values[i%keys]); got != want {
					t.Fatalf("reply %d: got %q, want %q", i, got, want)
				}
			}
			if tc.tail != nil {
				if rep, err := proxytest.ReadReply(br); err != nil || rep.Raw != "+OK\r\n" {
					t.Fatalf("QUIT: %q, %v", rep.Raw, err)
				}
				if _, err := br.ReadByte(); err != io.EOF {
					t.Fatalf("after QUIT: %v, want EOF", err)
				}
			}
			t.Logf("%d GETs written in %v, all replies read after %v", n, wrote.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		})
	}
}
