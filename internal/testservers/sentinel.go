package testservers

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/codec/resp"
)

// RedisReplica starts redis-server on a free port of 127.0.0.1 as a replica
// of primary (--replicaof), and waits until its link to primary is up.
// extra are further redis-server arguments, such as "--masterauth", "pw"
// for a primary with a password.
//
// A first sync waits for redis' repl-diskless-sync-delay (5 s by default)
// on the primary; RedisReplica sets it to 0 there, and the replica starts
// with it at 0 too, for when it is promoted.
func RedisReplica(tb testing.TB, primary *Server, extra ...string) *Server {
	tb.Helper()
	if err := quickSync(primary); err != nil {
		tb.Fatalf("primary %s: %v", primary.Addr, err)
	}
	args := append([]string{"--replicaof", primary.Host, strconv.Itoa(primary.Port),
		"--repl-diskless-sync-delay", "0"}, extra...)
	s := RedisOn(tb, "127.0.0.1", FreePort(tb, "127.0.0.1"), args...)
	s.waitLinkUp()
	return s
}

// RestartReplicaOf kills s, a redis-server, and starts it again on the same
// address as a replica of primary (host:port), then waits until its link to
// primary is up: a failed primary coming back as a replica of the one that
// replaced it. extra are further arguments; each replaces an argument of
// the same name s was started with.
func (s *Server) RestartReplicaOf(primary string, extra ...string) {
	s.tb.Helper()
	host, port, err := net.SplitHostPort(primary)
	if err != nil {
		s.tb.Fatalf("restart %s as replica: %v", s.Addr, err)
	}
	s.Kill()
	s.mu.Lock()
	s.args = setOptions(s.args, append([]string{"--replicaof", host, port, "--repl-diskless-sync-delay", "0"}, extra...))
	s.mu.Unlock()
	s.start()
	s.waitLinkUp()
}

// quickSync sets primary's repl-diskless-sync-delay to 0, for now and for
// its restarts.
func quickSync(primary *Server) error {
	primary.mu.Lock()
	primary.args = setOptions(primary.args, []string{"--repl-diskless-sync-delay", "0"})
	pw := optionValue(primary.args, "--requirepass")
	primary.mu.Unlock()
	_, err := query(primary.Addr, pw, "CONFIG", "SET", "repl-diskless-sync-delay", "0")
	return err
}

// waitLinkUp waits until INFO replication of s shows master_link_status:up.
func (s *Server) waitLinkUp() {
	s.tb.Helper()
	s.mu.Lock()
	pw := optionValue(s.args, "--requirepass")
	s.mu.Unlock()
	var info string
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		r, err := query(s.Addr, pw, "INFO", "replication")
		info = fmt.Sprint(r, err)
		if strings.Contains(info, "master_link_status:up") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.tb.Fatalf("replica %s: link to its primary not up after 20s:\n%s", s.Addr, info)
}

// setOptions returns args with the options of opts ("--name" and the values
// after it) put in place of options of the same name, or appended. The
// obsolete --slaveof is the same option as --replicaof.
func setOptions(args, opts []string) []string {
	out := slices.Clone(args)
	for _, g := range optionGroups(opts) {
		name := strings.ToLower(g[0])
		out = dropOption(out, name)
		if name == "--replicaof" {
			out = dropOption(out, "--slaveof")
		}
		out = append(out, g...)
	}
	return out
}

// dropOption returns args without the option name and its values.
func dropOption(args []string, name string) []string {
	var out []string
	for _, g := range optionGroups(args) {
		if !strings.EqualFold(g[0], name) {
			out = append(out, g...)
		}
	}
	return out
}

// optionGroups splits redis-server arguments into options: an argument that
// begins with "--" and the values up to the next such argument.
func optionGroups(args []string) [][]string {
	var gs [][]string
	for _, a := range args {
		if strings.HasPrefix(a, "--") || len(gs) == 0 {
			gs = append(gs, []string{a})
			continue
		}
		gs[len(gs)-1] = append(gs[len(gs)-1], a)
	}
	return gs
}

// optionValue is the first value of the last option name in args, or "".
func optionValue(args []string, name string) string {
	v := ""
	for _, g := range optionGroups(args) {
		if strings.EqualFold(g[0], name) && len(g) > 1 {
			v = g[1]
		}
	}
	return v
}

// SentinelOptions configure a Redis Sentinel. The zero value gives timings
// quick enough for a failover in a few seconds.
type SentinelOptions struct {
	// Quorum is how many sentinels must find a primary down before a
	// failover. Default: a majority of Sentinels' n; 1 for Sentinel.
	Quorum int
	// DownAfter is down-after-milliseconds: how long a server may not
	// answer before it counts as down. Default 1 s.
	DownAfter time.Duration
	// FailoverTimeout is failover-timeout; a failover that fails is
	// retried after twice this. Default 3 s.
	FailoverTimeout time.Duration
	// AuthPass is sentinel auth-pass: the password of the monitored
	// primaries and their replicas.
	AuthPass string
	// ConfigEpoch, when not 0, starts each master's config-epoch there: a
	// Sentinel that claims a newer configuration than its group's (a
	// misconfigured or lying one). Its start then waits only until it
	// answers for each master, whatever it finds there.
	ConfigEpoch int64
	// Password is the sentinel's own requirepass, which the sentinels of a
	// group also use with each other. The helpers of this file that ask a
	// sentinel (MasterAddr, WaitMaster, Failover) use it.
	Password string
}

// sentinelPasswords holds SentinelOptions.Password of each sentinel started
// here, by address; ports are never handed out twice (FreePort).
var sentinelPasswords sync.Map

// Sentinel starts a Redis Sentinel on a free port of 127.0.0.1 that
// monitors masters (name -> primary's ip:port; Sentinel needs an IP, not a
// host name), and waits until it sees each primary up with as many replicas
// as the primary has connected. Its configuration file, which the sentinel
// rewrites as it learns, lives in a temporary directory, so Kill and
// Restart give back a sentinel with what it had learned.
func Sentinel(tb testing.TB, masters map[string]string, opt SentinelOptions) *Server {
	tb.Helper()
	opt = opt.withDefaults(1)
	port := FreePort(tb, "127.0.0.1")
	dir := tb.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(conf, []byte(sentinelConfig(port, dir, masters, opt)), 0o644); err != nil {
		tb.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	sentinelPasswords.Store(addr, opt.Password)
	s := &Server{Host: "127.0.0.1", Port: port, Addr: addr, name: sentinelProgram(tb), args: []string{conf, "--sentinel"}, tb: tb}
	s.start()
	for name, primary := range masters {
		if opt.ConfigEpoch != 0 {
			waitSentinel(tb, s, name, "answer", func(map[string]string) bool { return true })
			continue
		}
		want := connectedReplicas(primary, opt.AuthPass)
		waitSentinel(tb, s, name, fmt.Sprintf("primary up with %d replicas", want), func(m map[string]string) bool {
			n, _ := strconv.Atoi(m["num-slaves"])
			return m["flags"] == "master" && n >= want
		})
	}
	return s
}

// Sentinels starts n sentinels as Sentinel does, and waits until each has
// found the n-1 others (they announce themselves through the primaries).
func Sentinels(tb testing.TB, n int, masters map[string]string, opt SentinelOptions) []*Server {
	tb.Helper()
	opt = opt.withDefaults(n/2 + 1)
	ss := make([]*Server, n)
	for i := range ss {
		ss[i] = Sentinel(tb, masters, opt)
	}
	for _, s := range ss {
		for name := range masters {
			waitSentinel(tb, s, name, fmt.Sprintf("%d other sentinels", n-1), func(m map[string]string) bool {
				k, _ := strconv.Atoi(m["num-other-sentinels"])
				return k >= n-1
			})
		}
	}
	return ss
}

func (o SentinelOptions) withDefaults(quorum int) SentinelOptions {
	if o.Quorum <= 0 {
		o.Quorum = quorum
	}
	if o.DownAfter <= 0 {
		o.DownAfter = time.Second
	}
	if o.FailoverTimeout <= 0 {
		o.FailoverTimeout = 3 * time.Second
	}
	return o
}

// sentinelConfig is the configuration file of a sentinel on port.
func sentinelConfig(port int, dir string, masters map[string]string, opt SentinelOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "port %d\nbind 127.0.0.1\ndaemonize no\ndir %s\n", port, strconv.Quote(dir))
	fmt.Fprintf(&b, "logfile %s\nloglevel notice\n", strconv.Quote(filepath.Join(dir, "sentinel.log")))
	if opt.Password != "" {
		fmt.Fprintf(&b, "requirepass %s\n", strconv.Quote(opt.Password))
	}
	names := make([]string, 0, len(masters))
	for name := range masters {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		host, port, _ := net.SplitHostPort(masters[name])
		fmt.Fprintf(&b, "sentinel monitor %s %s %s %d\n", name, host, port, opt.Quorum)
		fmt.Fprintf(&b, "sentinel down-after-milliseconds %s %d\n", name, opt.DownAfter.Milliseconds())
		fmt.Fprintf(&b, "sentinel failover-timeout %s %d\n", name, opt.FailoverTimeout.Milliseconds())
		fmt.Fprintf(&b, "sentinel parallel-syncs %s 1\n", name)
		if opt.ConfigEpoch != 0 {
			fmt.Fprintf(&b, "sentinel config-epoch %s %d\n", name, opt.ConfigEpoch)
		}
		if opt.AuthPass != "" {
			fmt.Fprintf(&b, "sentinel auth-pass %s %s\n", name, strconv.Quote(opt.AuthPass))
		}
	}
	return b.String()
}

// sentinelProgram is redis-sentinel, or redis-server (which the
// "--sentinel" argument turns into a sentinel) where it is not installed.
func sentinelProgram(tb testing.TB) string {
	tb.Helper()
	if p, err := exec.LookPath("redis-sentinel"); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/bin", "/usr/local/bin"} {
		if p := filepath.Join(dir, "redis-sentinel"); fileExists(p) {
			return p
		}
	}
	return Need(tb, "redis-server")
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// connectedReplicas is connected_slaves in the INFO of a primary, 0 when it
// cannot be asked.
func connectedReplicas(addr, password string) int {
	r, err := query(addr, password, "INFO", "replication")
	info, _ := r.(string)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "connected_slaves:"); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// waitSentinel waits until the sentinel's SENTINEL MASTER name satisfies ok;
// what is a description for the failure.
func waitSentinel(tb testing.TB, s *Server, name, what string, ok func(map[string]string) bool) {
	tb.Helper()
	var last any
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		m, err := sentinelMaster(s.Addr, name)
		if err == nil && ok(m) {
			return
		}
		last = m
		if err != nil {
			last = err
		}
		time.Sleep(50 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(filepath.Dir(s.args[0]), "sentinel.log"))
	tb.Fatalf("sentinel %s, master %s: no %s after 20s; last: %v\nlog:\n%s", s.Addr, name, what, last, log)
}

// sentinelMaster is SENTINEL MASTER name as a map of field to value.
func sentinelMaster(addr, name string) (map[string]string, error) {
	r, err := sentinelQuery(addr, "SENTINEL", "MASTER", name)
	if err != nil {
		return nil, err
	}
	a, _ := r.([]any)
	m := map[string]string{}
	for i := 0; i+1 < len(a); i += 2 {
		m[fmt.Sprint(a[i])] = fmt.Sprint(a[i+1])
	}
	return m, nil
}

// MasterAddr asks the sentinel at sentinelAddr for the primary of master
// name (SENTINEL GET-MASTER-ADDR-BY-NAME) and returns it as ip:port.
func MasterAddr(sentinelAddr, name string) (string, error) {
	r, err := sentinelQuery(sentinelAddr, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", name)
	if err != nil {
		return "", err
	}
	a, ok := r.([]any)
	if !ok || len(a) != 2 {
		return "", fmt.Errorf("sentinel %s: master %s: reply %v", sentinelAddr, name, r)
	}
	return net.JoinHostPort(fmt.Sprint(a[0]), fmt.Sprint(a[1])), nil
}

// WaitMaster waits until every one of sentinels reports the same primary
// for master name, and one other than notAddr, and returns it.
func WaitMaster(tb testing.TB, sentinels []*Server, name, notAddr string, timeout time.Duration) string {
	tb.Helper()
	var got []string
	deadline := time.Now().Add(timeout)
	for {
		got = got[:0]
		agree := len(sentinels) > 0
		for _, s := range sentinels {
			a, err := MasterAddr(s.Addr, name)
			if err != nil {
				a, agree = err.Error(), false
			}
			got = append(got, a)
			agree = agree && a == got[0] && a != notAddr
		}
		if agree {
			return got[0]
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("master %s: sentinels report %q after %v, want one primary other than %s", name, got, timeout, notAddr)
	return ""
}

// Failover makes the sentinel start a failover of master name at once,
// without the other sentinels' agreement (SENTINEL FAILOVER), retrying
// while the sentinel has no replica fit to promote yet (one restarted a
// moment ago) or another failover runs. WaitMaster then waits for its end.
func Failover(tb testing.TB, sentinel *Server, name string, timeout time.Duration) {
	tb.Helper()
	var err error
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err = sentinelQuery(sentinel.Addr, "SENTINEL", "FAILOVER", name); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.Fatalf("sentinel %s: failover of %s: %v", sentinel.Addr, name, err)
}

// sentinelQuery is query with the password the sentinel at addr was
// started with.
func sentinelQuery(addr string, args ...string) (any, error) {
	pw, _ := sentinelPasswords.Load(addr)
	s, _ := pw.(string)
	return query(addr, s, args...)
}

// query sends one command to a Redis server or sentinel, after AUTH when
// password is not empty, and returns the whole reply (see readReply).
func query(addr, password string, args ...string) (any, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var b []byte
	if password != "" {
		b = appendCommand(b, "AUTH", password)
	}
	b = appendCommand(b, args...)
	if _, err := c.Write(b); err != nil {
		return nil, err
	}
	r := resp.NewReader(c, maxReply)
	if password != "" {
		if _, err := readReply(r); err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
	}
	return readReply(r)
}

func appendCommand(b []byte, args ...string) []byte {
	b = resp.AppendArray(b, len(args))
	for _, a := range args {
		b = resp.AppendBulkString(b, a)
	}
	return b
}

// maxReply bounds one reply read from a test server.
const maxReply = 64 << 20

// readReply reads one RESP2 reply: a string for a simple or bulk string,
// int64 for an integer, nil for a null, []any for an array; an error reply
// (anywhere in the reply) is returned as the error.
func readReply(r *resp.Reader) (any, error) {
	v, err := r.ReadValue()
	if err != nil {
		return nil, err
	}
	return plain(v)
}

// plain turns a reply into the values readReply returns.
func plain(v resp.Value) (any, error) {
	switch {
	case v.IsError():
		return nil, errors.New(string(v.Str))
	case v.Null:
		return nil, nil
	case v.Kind == resp.KindSimple || v.Kind == resp.KindBulk:
		return string(v.Str), nil
	case v.Kind == resp.KindInteger:
		return v.Int, nil
	case v.Kind != resp.KindArray:
		return nil, fmt.Errorf("unexpected reply type %q", byte(v.Kind))
	}
	a := make([]any, len(v.Elems))
	for i, e := range v.Elems {
		var err error
		if a[i], err = plain(e); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// SentinelLog returns the path of the log file of s, a sentinel started by
// Sentinel or Sentinels.
func (s *Server) SentinelLog() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return filepath.Join(filepath.Dir(s.args[0]), "sentinel.log")
}
