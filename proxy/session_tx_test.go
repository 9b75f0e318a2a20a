package proxy_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// txStep is requests one client sends in one write when pipelined; other
// says the second client sends them (another application changing a
// watched key).
type txStep struct {
	other bool
	cmds  [][]string
}

// txCase is a transaction scenario, run through the proxy and against a
// redis-server. Its keys share the hash tag {t}: one server of a pool.
type txCase struct {
	name  string
	steps []txStep
}

func byMain(cmds ...[]string) txStep  { return txStep{cmds: cmds} }
func byOther(cmds ...[]string) txStep { return txStep{other: true, cmds: cmds} }
func a(args ...string) []string       { return args }

// txLib is the function library FCALL calls, loaded on every server.
const txLib = "#!lua name=txlib\nredis.register_function('txincr', function(keys, args) return redis.call('INCR', keys[1]) end)"

var txCases = []txCase{
	{"set_incr_get", []txStep{byMain(a("MULTI"), a("SET", "{t}k", "v"), a("INCR", "{t}n"), a("GET", "{t}k"),
		a("EXEC"), a("GET", "{t}n"))}},
	{"no_key", []txStep{byMain(a("MULTI"), a("PING"), a("ECHO", "hi"), a("EXEC"), a("MULTI"), a("EXEC"))}},
	{"keyless_then_key", []txStep{byMain(a("MULTI"), a("PING"), a("EVAL", "return 7", "0"), a("SET", "{t}k", "1"),
		a("PING", "x"), a("EXEC"))}},
	{"eval_fcall", []txStep{byMain(a("MULTI"), a("EVAL", "return redis.call('INCRBY', KEYS[1], ARGV[1])", "1", "{t}n", "5"),
		a("FCALL", "txincr", "1", "{t}n"), a("EVAL", "return {1, 'two', redis.call('GET', KEYS[1])}", "1", "{t}n"),
		a("EXEC"))}},
	{"error_inside_exec", []txStep{byMain(a("SET", "{t}s", "str"), a("MULTI"), a("INCR", "{t}n"), a("LPUSH", "{t}s", "x"),
		a("INCR", "{t}s"), a("INCR", "{t}n"), a("EXEC"), a("GET", "{t}n"))}},
	{"unknown_command_aborts", []txStep{byMain(a("MULTI"), a("SET", "{t}a", "1"), a("NOSUCHCMD", "x"), a("SET", "{t}b", "2"),
		a("EXEC"), a("GET", "{t}a"), a("GET", "{t}b"))}},
	{"wrong_arity_aborts", []txStep{byMain(a("MULTI"), a("SET", "{t}a", "1"), a("GET"), a("EXEC"), a("GET", "{t}a"))}},
	{"error_before_key_aborts", []txStep{byMain(a("MULTI"), a("NOSUCHCMD"), a("SET", "{t}a", "1"), a("EXEC"), a("GET", "{t}a"))}},
	{"queued_ping_wrong_arity", []txStep{byMain(a("MULTI"), a("PING", "a", "b"), a("SET", "{t}a", "1"), a("EXEC"), a("GET", "{t}a"))}},
	{"queued_echo_wrong_arity", []txStep{byMain(a("MULTI"), a("ECHO"), a("EXEC"), a("MULTI"), a("SET", "{t}a", "1"), a("ECHO"),
		a("EXEC"), a("GET", "{t}a"))}},
	{"exec_wrong_arity", []txStep{byMain(a("MULTI"), a("SET", "{t}a", "1"), a("EXEC", "x"), a("GET", "{t}a"), a("EXEC"),
		a("EXEC", "y"), a("MULTI"), a("EXEC", "z"))}},
	{"exec_wrong_arity_unwatches", []txStep{byMain(a("WATCH", "{t}w"), a("EXEC", "x")), byOther(a("SET", "{t}w", "changed")),
		byMain(a("MULTI"), a("INCR", "{t}n"), a("EXEC"), a("MULTI", "x"), a("DISCARD", "x"), a("UNWATCH", "x"))}},
	{"wrong_arity_of_session_commands", []txStep{byMain(a("MULTI"), a("SET", "{t}a", "1"), a("DISCARD", "x"), a("MULTI", "x"),
		a("UNWATCH", "x"), a("EXEC"), a("GET", "{t}a"))}},
	{"without_multi", []txStep{byMain(a("EXEC"), a("DISCARD"), a("PING"))}},
	{"nested_multi_first", []txStep{byMain(a("MULTI"), a("MULTI"), a("SET", "{t}a", "1"), a("EXEC"), a("GET", "{t}a"))}},
	{"nested_multi_later", []txStep{byMain(a("MULTI"), a("SET", "{t}a", "1"), a("MULTI"), a("EXEC"), a("GET", "{t}a"))}},
	{"watch_inside_multi_first", []txStep{byMain(a("MULTI"), a("WATCH", "{t}a"), a("SET", "{t}a", "1"), a("EXEC"),
		a("GET", "{t}a"))}},
	{"watch_inside_multi_later", []txStep{byMain(a("MULTI"), a("SET", "{t}a", "1"), a("WATCH", "{t}a"), a("EXEC"),
		a("GET", "{t}a"))}},
	{"discard", []txStep{byMain(a("MULTI"), a("SET", "{t}a", "1"), a("INCR", "{t}n"), a("DISCARD"), a("GET", "{t}a"),
		a("EXEC"), a("MULTI"), a("DISCARD"))}},
	{"watch_abort", []txStep{byMain(a("SET", "{t}w", "0"), a("WATCH", "{t}w")), byOther(a("SET", "{t}w", "changed")),
		byMain(a("MULTI"), a("SET", "{t}w", "mine"), a("INCR", "{t}n"), a("EXEC"), a("GET", "{t}w"), a("GET", "{t}n"))}},
	{"watch_unchanged", []txStep{byMain(a("SET", "{t}w", "0"), a("WATCH", "{t}w", "{t}x"), a("GET", "{t}w"),
		a("MULTI"), a("INCR", "{t}w"), a("EXEC"), a("GET", "{t}w"))}},
	{"watch_unwatch", []txStep{byMain(a("WATCH", "{t}w"), a("UNWATCH")), byOther(a("SET", "{t}w", "changed")),
		byMain(a("MULTI"), a("INCR", "{t}n"), a("EXEC"), a("UNWATCH"))}},
	{"watch_exec_without_multi", []txStep{byMain(a("WATCH", "{t}w"), a("EXEC"), a("DISCARD")),
		byOther(a("SET", "{t}w", "changed")), byMain(a("MULTI"), a("INCR", "{t}n"), a("EXEC"))}},
	{"discard_unwatches", []txStep{byMain(a("WATCH", "{t}w"), a("MULTI"), a("DISCARD")), byOther(a("SET", "{t}w", "x")),
		byMain(a("MULTI"), a("SET", "{t}w", "y"), a("EXEC"), a("GET", "{t}w"))}},
	{"unwatch_inside_multi", []txStep{byMain(a("WATCH", "{t}w"), a("MULTI"), a("UNWATCH"), a("SET", "{t}w", "1"), a("EXEC"))}},
	{"blocking_inside_multi", []txStep{byMain(a("MULTI"), a("BLPOP", "{t}l", "1"), a("RPUSH", "{t}l", "a"),
		a("BLMOVE", "{t}l", "{t}m", "LEFT", "RIGHT", "0"), a("BZPOPMIN", "{t}z", "0"), a("EXEC"))}},
	{"rpush_after_exec_abort", []txStep{byMain(a("MULTI"), a("RPUSH", "{t}l", "a"), a("FOO"), a("EXEC"), a("LLEN", "{t}l"),
		a("MULTI"), a("RPUSH", "{t}l", "b"), a("EXEC"))}},
}

// TestTransactionsSameRepliesAsRedis runs every transaction scenario
// through a pool of one server and a pool of three, and against a
// redis-server, in RESP2 and RESP3, one request at a time and each
// client's steps as one write, and compares the replies byte for byte.
func TestTransactionsSameRepliesAsRedis(t *testing.T) {
	for _, servers := range []int{1, 3} {
		t.Run(fmt.Sprintf("pool_of_%d", servers), func(t *testing.T) {
			f := proxytest.NewRedisFixture(t, servers, proxytest.Pool{HashTag: "{}"})
			direct := testservers.Redis(t)
			all := append([]*testservers.Server{direct}, f.Backends...)
			for _, s := range all {
				if got, err := testservers.Do(s.Addr, "FUNCTION", "LOAD", txLib); err != nil || got != "txlib" {
					t.Fatalf("FUNCTION LOAD on %s: %q %v", s.Addr, got, err)
				}
			}
			compared, differ := 0, 0
			for _, proto := range []int{2, 3} {
				for _, pipelined := range []bool{false, true} {
					for _, c := range txCases {
						got := runTxCase(t, f.Addr, all[1:], proto, pipelined, c)
						want := runTxCase(t, direct.Addr, all[:1], proto, pipelined, c)
						compared += len(want)
						differ += compareTx(t, fmt.Sprintf("RESP%d pipelined=%v %s", proto, pipelined, c.name), c, got, want)
					}
				}
			}
			t.Logf("%d replies compared, %d differ", compared, differ)
		})
	}
}

// runTxCase empties the servers, runs c on two clients of addr and
// returns the replies in order.
func runTxCase(t *testing.T, addr string, servers []*testservers.Server, proto int, pipelined bool, c txCase) []string {
	t.Helper()
	for _, s := range servers {
		if _, err := testservers.Do(s.Addr, "FLUSHALL"); err != nil {
			t.Fatalf("FLUSHALL %s: %v", s.Addr, err)
		}
	}
	conns := [2]*proxytest.Conn{proxytest.Dial(t, addr), proxytest.Dial(t, addr)}
	defer conns[0].Net.Close()
	defer conns[1].Net.Close()
	if proto == 3 {
		conns[0].Hello3()
		conns[1].Hello3()
	}
	var out []string
	for _, st := range c.steps {
		cn := conns[0]
		if st.other {
			cn = conns[1]
		}
		if pipelined {
			out = append(out, proxytest.PipelineAny(t, cn, st.cmds)...)
			continue
		}
		for _, args := range st.cmds {
			out = append(out, cn.DoAny(args...))
		}
	}
	return out
}

// compareTx reports the replies that differ, and returns how many.
func compareTx(t *testing.T, label string, c txCase, got, want []string) int {
	t.Helper()
	var cmds [][]string
	for _, st := range c.steps {
		cmds = append(cmds, st.cmds...)
	}
	bad := 0
	for i := range want {
		if got[i] != want[i] {
			bad++
			t.Errorf("%s: %q:\nproxy: %q\nredis: %q", label, strings.Join(cmds[i], " "), proxytest.Short(got[i]), proxytest.Short(want[i]))
		}
	}
	return bad
}

// TestTransactionRefusedByServerLeavesNoMulti has the server refuse a
// command the proxy queued before the transaction's server was known (the
// pool's ACL user may not PING): the transaction aborts, and its
// connection, which the server left in MULTI, is not handed to the next
// transaction in that state.
func TestTransactionRefusedByServerLeavesNoMulti(t *testing.T) {
	b := testservers.Redis(t)
	if got, err := testservers.Do(b.Addr, "ACL", "SETUSER", "app", "on", ">secret", "~*", "&*", "+@all", "-ping"); err != nil || got != "+OK" {
		t.Fatalf("ACL SETUSER: %q %v", got, err)
	}
	px := proxytest.StartProxy(t, proxytest.PoolYAML(proxytest.FreeListen(t), []*testservers.Server{b},
		"redis_username: app", "redis_auth: secret"))
	addr := px.Addr(0).String()
	c := proxytest.Dial(t, addr)
	c.Do("AUTH", "secret")
	got := proxytest.PipelineAny(t, c, [][]string{{"MULTI"}, {"PING"}, {"SET", "{t}a", "1"}, {"EXEC"}})
	t.Logf("refused transaction: %q", got)
	if !strings.HasPrefix(got[2], "-") || got[3] != "-EXECABORT Transaction discarded because of previous errors.\r\n" {
		t.Errorf("SET after a refused PING, EXEC: %q %q, want an error and -EXECABORT", got[2], got[3])
	}
	if left := sessionStates(t, b.Addr); len(left) > 0 {
		t.Errorf("server connections left in a transaction or watch: %q", left)
	}
	c2 := proxytest.Dial(t, addr)
	c2.Do("AUTH", "secret")
	got = proxytest.PipelineAny(t, c2, [][]string{{"MULTI"}, {"SET", "{t}a", "2"}, {"EXEC"}})
	if want := []string{"+OK\r\n", "+QUEUED\r\n", "*1\r\n+OK\r\n"}; strings.Join(got, "") != strings.Join(want, "") {
		t.Errorf("next transaction: %q, want %q", got, want)
	}
	if v, _ := testservers.Do(b.Addr, "GET", "{t}a"); v != "2" {
		t.Errorf("{t}a on the server: %q, want 2", v)
	}
}

// sessionStates returns the server's client connections (but the one
// asking) that are in MULTI (flags x), watching (last command WATCH) or
// blocked (flags b).
func sessionStates(t *testing.T, addr string) []string {
	t.Helper()
	list, err := testservers.Do(addr, "CLIENT", "LIST")
	if err != nil {
		t.Fatalf("CLIENT LIST %s: %v", addr, err)
	}
	var left []string
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		f := map[string]string{}
		for _, kv := range strings.Fields(line) {
			k, v, _ := strings.Cut(kv, "=")
			f[k] = v
		}
		if f["cmd"] == "client|list" {
			continue
		}
		if strings.ContainsAny(f["flags"], "xb") || f["cmd"] == "watch" || f["cmd"] == "multi" {
			left = append(left, line)
		}
	}
	return left
}

// waitNoSessionStates polls until no connection of the servers is in a
// transaction, a watch or a blocking command, for up to 5 s, and returns
// how long that took.
func waitNoSessionStates(t *testing.T, addrs ...string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		var left []string
		for _, a := range addrs {
			left = append(left, sessionStates(t, a)...)
		}
		if len(left) == 0 {
			return time.Since(start)
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("server connections still in a session after 5 s: %q", left)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTransactionKeyOnAnotherServer queues, in a pool of three, a command
// whose key lives on another server than the transaction's: the proxy
// refuses it naming why, EXEC answers Redis's -EXECABORT, and no server
// holds any of its keys. A WATCH of keys on two servers and a blocking
// command over two servers are refused the same way.
func TestTransactionKeyOnAnotherServer(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 3, proxytest.Pool{})
	k0, k1 := f.KeysOn(0, "a", 2), f.KeysOn(1, "b", 1)
	c := proxytest.Dial(t, f.Addr)
	for _, pipelined := range []bool{false, true} {
		cmds := [][]string{{"MULTI"}, {"SET", k0[0], "1"}, {"SET", k1[0], "2"}, {"INCR", k0[1]}, {"EXEC"}}
		var got []string
		if pipelined {
			got = proxytest.PipelineAny(t, c, cmds)
		} else {
			for _, cmd := range cmds {
				got = append(got, c.DoAny(cmd...))
			}
		}
		t.Logf("pipelined=%v: %q", pipelined, got)
		if got[1] != "+QUEUED\r\n" || !strings.HasPrefix(got[2], "-ERR the keys of 'set' live on another server") ||
			got[3] != "+QUEUED\r\n" || got[4] != "-EXECABORT Transaction discarded because of previous errors.\r\n" {
			t.Errorf("pipelined=%v: %q", pipelined, got)
		}
		for _, b := range f.Backends {
			if n := proxytest.Dbsize(t, b.Addr); n != 0 {
				t.Errorf("%s holds %d keys after the aborted transaction", b.Addr, n)
			}
		}
	}
	if got := c.Do("WATCH", k0[0], k1[0]); !strings.HasPrefix(got, "-ERR the keys of 'watch' live on different servers") {
		t.Errorf("WATCH over two servers: %q", got)
	}
	if got := c.Do("BLPOP", k0[0], k1[0], "0"); !strings.HasPrefix(got, "-ERR the keys of 'blpop' live on different servers") {
		t.Errorf("BLPOP over two servers: %q", got)
	}
	c.Do("WATCH", k0[0])
	if got := c.Do("WATCH", k1[0]); !strings.HasPrefix(got, "-ERR the keys of 'watch' live on another server") {
		t.Errorf("WATCH of a second server's key: %q", got)
	}
	// While watching, a command for another server is served as ever.
	if got := c.Do("SET", k1[0], "v"); got != "+OK\r\n" {
		t.Errorf("SET on another server while watching: %q", got)
	}
	if got := proxytest.PipelineAny(t, c, [][]string{{"MULTI"}, {"SET", k0[0], "x"}, {"EXEC"}}); got[2] != "*1\r\n+OK\r\n" {
		t.Errorf("transaction after: %q", got)
	}
}

// TestGoRedisTransactions runs go-redis v9's TxPipelined and its
// optimistic lock (Watch, retried on TxFailedErr) through a pool of three,
// in RESP2 and RESP3: 10 goroutines increment one counter 50 times each,
// and it ends at exactly 500.
func TestGoRedisTransactions(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 3, proxytest.Pool{HashTag: "{}"})
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			rdb := redis.NewClient(&redis.Options{Addr: f.Addr, Protocol: proto, DisableIdentity: true, MaxRetries: -1,
				ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, PoolSize: 10})
			defer rdb.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			tag := fmt.Sprintf("{p%d}", proto)
			cmds, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, tag+"a", "1", 0)
				p.Incr(ctx, tag+"a")
				p.Get(ctx, tag+"a")
				return nil
			})
			if err != nil || len(cmds) != 3 || cmds[2].(*redis.StringCmd).Val() != "2" {
				t.Fatalf("TxPipelined: %v %v", cmds, err)
			}
			counter := tag + "counter"
			var retries atomic.Int64
			incr := func() error {
				for {
					err := rdb.Watch(ctx, func(tx *redis.Tx) error {
						n, err := tx.Get(ctx, counter).Int()
						if err != nil && err != redis.Nil {
							return err
						}
						_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
							p.Set(ctx, counter, n+1, 0)
							return nil
						})
						return err
					}, counter)
					if err != redis.TxFailedErr {
						return err
					}
					retries.Add(1)
				}
			}
			start := time.Now()
			var wg sync.WaitGroup
			errs := make(chan error, 10)
			for range 10 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 50 {
						if err := incr(); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			got, err := rdb.Get(ctx, counter).Int()
			t.Logf("counter %d after 10 x 50 optimistic increments in %v, %d retries (WATCH aborts)", got, time.Since(start), retries.Load())
			if err != nil || got != 500 {
				t.Errorf("counter: %d %v, want 500", got, err)
			}
		})
	}
}
