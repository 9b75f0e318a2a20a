package proxy_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/hashring"
	"github.com/shardproxy/shardproxy/internal/testservers"
	"github.com/shardproxy/shardproxy/proxy"
)

// ftPool describes the pool of a fault test: its backends and failure
// settings. Durations are in milliseconds; zero leaves a key out.
type ftPool struct {
	memcache     bool
	timeoutMS    int
	autoEject    bool
	failureLimit int
	retryMS      int
	parkMS       int // client_park_after; 0 leaves the default
	backends     []*testservers.Server
}

// yaml renders the pool as a configuration file listening on listen.
func (fp ftPool) yaml(listen string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ft:\n  listen: %s\n  redis: %v\n  hash: fnv1a_64\n  distribution: ketama\n", listen, !fp.memcache)
	if fp.timeoutMS > 0 {
		fmt.Fprintf(&b, "  timeout: %d\n", fp.timeoutMS)
	}
	if fp.parkMS > 0 {
		fmt.Fprintf(&b, "  client_park_after: %d\n", fp.parkMS)
	}
	if fp.autoEject {
		fmt.Fprintf(&b, "  auto_eject_hosts: true\n  server_failure_limit: %d\n  server_retry_timeout: %d\n",
			fp.failureLimit, fp.retryMS)
	}
	b.WriteString("  servers:\n")
	for _, s := range fp.backends {
		fmt.Fprintf(&b, "    - %s:1\n", s.Addr)
	}
	return b.String()
}

// ftProxy is a running proxy over real backends, with the placement it uses
// when every server is live.
type ftProxy struct {
	px       *proxy.Proxy
	addr     string
	backends []*testservers.Server
	idents   []string
	place    *hashring.Placement
}

// ftStart starts the proxy for fp; the test's cleanup closes it and checks
// that Close returns in time.
func ftStart(t *testing.T, fp ftPool) *ftProxy {
	t.Helper()
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(testservers.FreePort(t, "127.0.0.1")))
	yaml := fp.yaml(listen)
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	pc := cfg.Pools[0]
	hc := hashring.Config{Hash: pc.Hash, HashTag: pc.HashTag, Distribution: pc.Distribution}
	f := &ftProxy{backends: fp.backends}
	for _, s := range pc.Servers {
		hc.Servers = append(hc.Servers, hashring.Server{Name: s.Ident, Weight: s.Weight})
		f.idents = append(f.idents, s.Ident)
	}
	if f.place, err = hashring.New(hc); err != nil {
		t.Fatalf("placement: %v", err)
	}
	if f.px, err = proxy.New(cfg, proxy.Options{}); err != nil {
		t.Fatalf("proxy.New: %v", err)
	}
	if err := f.px.Start(); err != nil {
		t.Fatalf("proxy.Start: %v", err)
	}
	f.addr = f.px.Addr(0).String()
	t.Cleanup(func() {
		done := make(chan error, 1)
		go func() { done <- f.px.Close() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("proxy.Close: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("proxy.Close did not return within 10 s; stuck goroutines:\n%s", ftProxyStacks())
		}
	})
	return f
}

// ftRedisBackends starts n redis-server processes.
func ftRedisBackends(t *testing.T, n int) []*testservers.Server {
	t.Helper()
	out := make([]*testservers.Server, n)
	for i := range out {
		out[i] = testservers.Redis(t)
	}
	return out
}

// ftMemcacheBackends starts n memcached processes with extra arguments.
func ftMemcacheBackends(t *testing.T, n int, extra ...string) []*testservers.Server {
	t.Helper()
	out := make([]*testservers.Server, n)
	for i := range out {
		out[i] = testservers.Memcached(t, extra...)
	}
	return out
}

// shardOf returns the index of the backend that holds key while every
// server is live.
func (f *ftProxy) shardOf(key string) int { return f.place.Pick([]byte(key)) }

// keysOn returns n distinct keys "<prefix><i>" that live on shard.
func (f *ftProxy) keysOn(shard int, prefix string, n int) []string {
	var keys []string
	for i := 0; len(keys) < n; i++ {
		k := prefix + strconv.Itoa(i)
		if f.shardOf(k) == shard {
			keys = append(keys, k)
		}
	}
	return keys
}

// ftReply is one parsed RESP2 reply.
type ftReply struct {
	kind  byte // '+', '-', ':', '$' or '*'
	str   string
	null  bool
	num   int64
	elems []ftReply
}

// String renders the reply for failure messages.
func (r ftReply) String() string {
	switch {
	case r.null:
		return "(nil)"
	case r.kind == '*':
		parts := make([]string, len(r.elems))
		for i, e := range r.elems {
			parts[i] = e.String()
		}
		return "[" + strings.Join(parts, " ") + "]"
	case r.kind == ':':
		return strconv.FormatInt(r.num, 10)
	}
	s := r.str
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return string(r.kind) + s
}

// ftRead reads one RESP2 reply.
func ftRead(r *bufio.Reader) (ftReply, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return ftReply{}, err
	}
	if len(line) < 3 || !strings.HasSuffix(line, "\r\n") {
		return ftReply{}, fmt.Errorf("bad reply line %q", line)
	}
	rep := ftReply{kind: line[0], str: line[1 : len(line)-2]}
	switch rep.kind {
	case '+', '-':
		return rep, nil
	case ':', '$', '*':
	default:
		return rep, fmt.Errorf("unknown reply type in %q", line)
	}
	n, err := strconv.ParseInt(rep.str, 10, 64)
	if err != nil {
		return rep, fmt.Errorf("bad number in %q", line)
	}
	rep.str, rep.num = "", n
	switch {
	case rep.kind == ':':
		return rep, nil
	case n < 0:
		rep.null = true
		return rep, nil
	case rep.kind == '$':
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return rep, err
		}
		rep.str = string(buf[:n])
		return rep, nil
	}
	for i := int64(0); i < n; i++ {
		e, err := ftRead(r)
		if err != nil {
			return rep, err
		}
		rep.elems = append(rep.elems, e)
	}
	return rep, nil
}

// ftCommand appends args as a RESP multibulk request.
func ftCommand(dst []byte, args ...string) []byte {
	dst = fmt.Appendf(dst, "*%d\r\n", len(args))
	for _, a := range args {
		dst = fmt.Appendf(dst, "$%d\r\n%s\r\n", len(a), a)
	}
	return dst
}

// ftConn is a raw client connection.
type ftConn struct {
	nc net.Conn
	r  *bufio.Reader
}

// ftDial connects to addr, retrying briefly while the listen queue is full.
func ftDial(addr string) (*ftConn, error) {
	var err error
	for i := 0; i < 50; i++ {
		var nc net.Conn
		nc, err = net.DialTimeout("tcp", addr, 5*time.Second)
		if err == nil {
			return &ftConn{nc: nc, r: bufio.NewReaderSize(nc, 16<<10)}, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, err
}

// do sends one command and reads its reply within d.
func (c *ftConn) do(d time.Duration, args ...string) (ftReply, error) {
	c.nc.SetDeadline(time.Now().Add(d))
	if _, err := c.nc.Write(ftCommand(nil, args...)); err != nil {
		return ftReply{}, err
	}
	return ftRead(c.r)
}

// ftErrorOf returns the error text of a reply or of a failed exchange, or
// "" for a reply that is no error.
func ftErrorOf(rep ftReply, err error) string {
	if err != nil {
		return "exchange: " + err.Error()
	}
	if rep.kind == '-' {
		return rep.str
	}
	return ""
}

// errFtMismatch marks a reply that differs from the model.
var errFtMismatch = errors.New("reply differs from the model")

// ftProxyStacks returns the stacks of goroutines in the proxy's packages.
func ftProxyStacks() string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "shardproxy/proxy.") || strings.Contains(g, "shardproxy/pools.") {
			if !strings.Contains(g, "proxy_test.") {
				out = append(out, g)
			}
		}
	}
	return strings.Join(out, "\n\n")
}

// ftStop pauses a server with SIGSTOP and waits until the kernel shows it
// stopped, so that no request sent afterwards is answered.
func ftStop(t *testing.T, s *testservers.Server) {
	t.Helper()
	s.Stop()
	stat := fmt.Sprintf("/proc/%d/stat", s.Cmd.Process.Pid)
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		b, err := os.ReadFile(stat)
		if err != nil {
			t.Fatalf("server state: %v", err)
		}
		// The state follows the parenthesised command name.
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 && strings.HasPrefix(string(b[i:]), ") T") {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%s did not stop", s.Addr)
}
