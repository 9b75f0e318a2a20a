package proxy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// TestRESP3GoRedis runs go-redis v9 with its default protocol (it says
// HELLO 3 and speaks RESP3 when the server accepts it) and with Protocol:
// 2, through a pool of three servers and straight to a redis-server: the
// protocol the connection speaks (a raw HGETALL is a map in RESP3 and a
// slice in RESP2, a raw ZSCORE a float64 and a string), MGET across
// servers, and a pipeline of more than 100 mixed commands whose results
// must print the same.
func TestRESP3GoRedis(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 3, proxytest.Pool{HashTag: "{}"})
	direct := testservers.Redis(t)
	for _, proto := range []int{0, 2} {
		t.Run(fmt.Sprintf("protocol_%d", proto), func(t *testing.T) {
			viaProxy, viaRedis := goRedisClient(t, f.Addr, proto), goRedisClient(t, direct.Addr, proto)
			got, want := goRedisSession(t, viaProxy, proto), goRedisSession(t, viaRedis, proto)
			if len(got) != len(want) || len(got) < 100 {
				t.Fatalf("proxy ran %d commands, redis %d; want the same, at least 100", len(got), len(want))
			}
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("command %d:\nproxy: %s\nredis: %s", i, got[i], want[i])
				}
			}
		})
	}
}

// goRedisClient returns a go-redis client of the given protocol (0 is the
// default, 3) that never retries, closed with the test.
func goRedisClient(t *testing.T, addr string, proto int) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: proto, MaxRetries: -1, PoolSize: 2,
		DialTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second})
	t.Cleanup(func() { c.Close() })
	return c
}

// goRedisSession checks the protocol c speaks and returns the printed
// results of its commands.
func goRedisSession(t *testing.T, c *redis.Client, proto int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.HSet(ctx, "gr:h", "a", "1", "b", "2").Err(); err != nil {
		t.Fatalf("HSET: %v", err)
	}
	if err := c.ZAdd(ctx, "gr:z", redis.Z{Score: 1.5, Member: "m"}).Err(); err != nil {
		t.Fatalf("ZADD: %v", err)
	}
	wantMap, wantScore := reflect.TypeFor[map[any]any](), reflect.TypeFor[float64]()
	if proto == 2 {
		wantMap, wantScore = reflect.TypeFor[[]any](), reflect.TypeFor[string]()
	}
	if v, err := c.Do(ctx, "HGETALL", "gr:h").Result(); err != nil || reflect.TypeOf(v) != wantMap {
		t.Errorf("raw HGETALL: %#v (%v); want a %v", v, err, wantMap)
	}
	if v, err := c.Do(ctx, "ZSCORE", "gr:z", "m").Result(); err != nil || reflect.TypeOf(v) != wantScore {
		t.Errorf("raw ZSCORE: %#v (%v); want a %v", v, err, wantScore)
	}
	if err := c.MSet(ctx, "gr:1", "a", "gr:2", "b", "gr:3", "c", "gr:4", "d").Err(); err != nil {
		t.Fatalf("MSET: %v", err)
	}
	got, err := c.MGet(ctx, "gr:1", "gr:2", "gr:missing", "gr:3", "gr:4", "gr:h").Result()
	if want := []any{"a", "b", nil, "c", "d", nil}; err != nil || !slices.Equal(got, want) {
		t.Errorf("MGET: %v, %v; want %v", got, err, want)
	}
	cmds, err := c.Pipelined(ctx, mixedPipeline)
	if err != nil && err != redis.Nil && !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Fatalf("pipeline: %v", err)
	}
	out := make([]string, len(cmds))
	for i, cmd := range cmds {
		out[i] = cmd.String()
	}
	return out
}

// TestRESP3Rueidis runs rueidis, a client that speaks RESP3 only, through
// a pool of three servers with client-side caching off: the proxy does not
// support CLIENT TRACKING, which rueidis asks for when caching is on, and
// NewClient then fails with rueidis.ErrNoCache (checked here too).
func TestRESP3Rueidis(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 3, proxytest.Pool{HashTag: "{}"})
	_, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{f.Addr}, DisableRetry: true})
	if !errors.Is(err, rueidis.ErrNoCache) {
		t.Errorf("rueidis with client-side caching: %v; want ErrNoCache (no CLIENT TRACKING)", err)
	}
	t.Logf("rueidis with client-side caching: %v", err)
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{f.Addr}, DisableCache: true, DisableRetry: true})
	if err != nil {
		t.Fatalf("rueidis: %v", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Do(ctx, c.B().Hset().Key("ru:h").FieldValue().FieldValue("a", "1").FieldValue("b", "2").Build()).Error(); err != nil {
		t.Fatalf("HSET: %v", err)
	}
	if m, err := c.Do(ctx, c.B().Hgetall().Key("ru:h").Build()).AsStrMap(); err != nil || len(m) != 2 || m["b"] != "2" {
		t.Errorf("HGETALL: %v, %v", m, err)
	}
	if err := c.Do(ctx, c.B().Mset().KeyValue().KeyValue("ru:1", "a").KeyValue("ru:2", "b").KeyValue("ru:3", "c").Build()).Error(); err != nil {
		t.Fatalf("MSET: %v", err)
	}
	vals, err := c.Do(ctx, c.B().Mget().Key("ru:1", "ru:missing", "ru:2", "ru:3").Build()).ToArray()
	if err != nil || len(vals) != 4 || !vals[1].IsNil() {
		t.Fatalf("MGET: %v, %v; want 4 values, the second nil", vals, err)
	}
	// A pipeline: every reply in order, typed as RESP3 gives it.
	resps := c.DoMulti(ctx,
		c.B().Set().Key("ru:p").Value("1").Build(), c.B().Incr().Key("ru:p").Build(),
		c.B().Zadd().Key("ru:z").ScoreMember().ScoreMember(2.5, "m").Build(), c.B().Zscore().Key("ru:z").Member("m").Build(),
		c.B().Smembers().Key("ru:missing").Build(), c.B().Get().Key("ru:missing").Build(),
		c.B().Exists().Key("ru:1", "ru:2", "ru:p", "ru:none").Build(), c.B().Lpush().Key("ru:h").Element("x").Build())
	if n, err := resps[1].AsInt64(); err != nil || n != 2 {
		t.Errorf("INCR: %d, %v", n, err)
	}
	if score, err := resps[3].AsFloat64(); err != nil || score != 2.5 {
		t.Errorf("ZSCORE: %v, %v", score, err)
	}
	if members, err := resps[4].AsStrSlice(); err != nil || len(members) != 0 {
		t.Errorf("SMEMBERS of a missing key: %v, %v", members, err)
	}
	if err := resps[5].Error(); !rueidis.IsRedisNil(err) {
		t.Errorf("GET of a missing key: %v; want a nil", err)
	}
	if n, err := resps[6].AsInt64(); err != nil || n != 3 {
		t.Errorf("EXISTS: %d, %v; want 3", n, err)
	}
	if err := resps[7].Error(); err == nil || !strings.HasPrefix(err.Error(), "WRONGTYPE") {
		t.Errorf("LPUSH on a hash: %v; want WRONGTYPE", err)
	}
}

// TestRESP3NodeRedis runs node-redis 5 with RESP: 3 (testdata/node-redis,
// installed by test.sh with npm) through a pool of three servers and
// straight to a redis-server, and compares what its commands returned:
// SET, GET, HGETALL as an object, SMEMBERS, ZSCORE as a number, MGET
// across servers with nulls, DEL, a pipeline and commands node-redis
// pipelines itself. Only a machine without node skips it.
func TestRESP3NodeRedis(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed (test.sh installs it)")
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "node-redis"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "redis")); err != nil {
		t.Fatalf("node-redis is not installed: run ./test.sh, or npm ci --prefix %s (%v)", dir, err)
	}
	f := proxytest.NewRedisFixture(t, 3, proxytest.Pool{HashTag: "{}"})
	direct := testservers.Redis(t)
	got, want := runNodeRedis(t, node, dir, f.Addr), runNodeRedis(t, node, dir, direct.Addr)
	if got["helloProto"] != float64(3) {
		t.Errorf("HELLO through the proxy answered proto %v; want 3", got["helloProto"])
	}
	if _, ok := got["rawHGetAll"].(map[string]any); !ok {
		t.Errorf("raw HGETALL through the proxy: %v; want a RESP3 map (an object)", got["rawHGetAll"])
	}
	for k, w := range want {
		if !reflect.DeepEqual(got[k], w) {
			t.Errorf("%s:\nproxy: %v\nredis: %v", k, got[k], w)
		}
	}
	t.Logf("node-redis through the proxy: %v", got)
}

// runNodeRedis runs the node-redis script against addr and decodes what it
// printed.
func runNodeRedis(t *testing.T, node, dir, addr string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "resp3.mjs"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "REDIS_URL=redis://"+addr)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("node-redis against %s: %v\n%s%s", addr, err, stdout, stderr.String())
	}
	var out map[string]any
	if err := json.Unmarshal(stdout, &out); err != nil {
		t.Fatalf("node-redis against %s printed %q: %v", addr, stdout, err)
	}
	return out
}
