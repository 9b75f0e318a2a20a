package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/proxy"
)

// heapAndStack is the memory in use for the heap and the stacks, after a
// collection.
func heapAndStack() (uint64, int) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse, runtime.NumGoroutine()
}

// settle waits until the goroutine count has stopped falling (clients
// parking, writers ending) and returns the memory and goroutines then.
func settle(t *testing.T, px *proxy.Proxy, parked int64) (uint64, int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for proxytest.PoolStat(t, px, "client_parked") < parked && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	mem, g := heapAndStack()
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		m2, g2 := heapAndStack()
		if g2 >= g {
			return m2, g2
		}
		mem, g = m2, g2
	}
	return mem, g
}

// TestPubSubIdleSubscriberCost measures what an idle subscriber costs the
// proxy: 2,000 clients connect and park, then each subscribes to a
// channel of its own and parks again. The heap and stack growth per
// client, and the goroutines per subscriber, are logged; a subscriber
// must cost no more than one goroutine (its connection's reader) and
// 32 KiB above an idle client.
func TestPubSubIdleSubscriberCost(t *testing.T) {
	const n = 2000
	if got := proxytest.RaiseFileLimit(t, 4*n+512); got < 4*n+512 {
		t.Skipf("open file limit %d, want %d", got, 4*n+512)
	}
	backends := proxytest.StartRedisBackends(t, 1)
	px := proxytest.StartProxyOpts(t, proxytest.PoolYAML(proxytest.FreeListen(t), backends,
		"client_park_after: 100", fmt.Sprintf("server_sessions: %d", n+100)), proxy.Options{StatsAddr: "127.0.0.1:0"})
	addr := px.Addr(0).String()
	base, g0 := heapAndStack()
	conns := make([]net.Conn, n)
	buf := make([]byte, 256)
	for i := range conns {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		t.Cleanup(func() { nc.Close() })
		nc.SetDeadline(time.Now().Add(30 * time.Second))
		conns[i] = nc
		roundTrip(t, nc, buf, proxytest.EncodeCommand(nil, "PING"), "+PONG\r\n")
	}
	idle, g1 := settle(t, px, n)
	for i, nc := range conns {
		ch := "idle:" + strconv.Itoa(i)
		roundTrip(t, nc, buf, proxytest.EncodeCommand(nil, "SUBSCRIBE", ch), proxytest.Array(proxytest.Bulk("subscribe"), proxytest.Bulk(ch), ":1\r\n"))
	}
	subscribed, g2 := settle(t, px, n)
	perIdle := float64(int64(idle)-int64(base)) / n
	perSub := float64(int64(subscribed)-int64(base)) / n
	t.Logf("%d clients: %.0f bytes each idle, %.0f bytes each subscribed (heap+stack, test side included), %.0f bytes per subscription; goroutines %d -> %d idle -> %d subscribed: %.2f per subscriber",
		n, perIdle, perSub, perSub-perIdle, g0, g1, g2, float64(g2-g1)/n)
	if g2-g1 > n+n/100 { // one reader each, and a few that come and go
		t.Errorf("%d goroutines for %d idle subscribers", g2-g1, n)
	}
	if perSub-perIdle > 32<<10 {
		t.Errorf("a subscription costs %.0f bytes", perSub-perIdle)
	}
	pub := proxytest.Dial(t, addr)
	if got := pub.Do("PUBLISH", "idle:7", "wake"); got != ":1\r\n" {
		t.Fatalf("PUBLISH to a parked subscriber: %q", got)
	}
	want := proxytest.Array(proxytest.Bulk("message"), proxytest.Bulk("idle:7"), proxytest.Bulk("wake"))
	if _, err := io.ReadFull(conns[7], buf[:len(want)]); err != nil || string(buf[:len(want)]) != want {
		t.Fatalf("parked subscriber: %q %v", buf[:len(want)], err)
	}
}

// roundTrip writes req on nc and reads exactly want back.
func roundTrip(t *testing.T, nc net.Conn, buf, req []byte, want string) {
	t.Helper()
	if _, err := nc.Write(req); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(nc, buf[:len(want)]); err != nil || string(buf[:len(want)]) != want {
		t.Fatalf("%q: %q %v, want %q", req, buf[:len(want)], err, want)
	}
}

// TestPubSubServerKilled checks that a server's death closes the
// connections of the clients subscribed on it (they reconnect and
// subscribe again, as they would to Redis), and no other client's; their
// subscriptions on the other servers end too. Parked subscribers, which
// have no goroutine of their own, are ended as well.
func TestPubSubServerKilled(t *testing.T) {
	for _, park := range []bool{false, true} {
		t.Run(fmt.Sprintf("parked=%v", park), func(t *testing.T) { serverKilled(t, park) })
	}
}

func serverKilled(t *testing.T, park bool) {
	backends := proxytest.StartRedisBackends(t, 3)
	p := proxytest.Pool{HashTag: "{}", Servers: proxytest.ServerLines(backends, nil, nil)}
	if park {
		p.Keys = []string{"client_park_after: 100"}
	}
	px := proxytest.StartProxyOpts(t, p.YAML("alpha", proxytest.FreeListen(t)), proxy.Options{StatsAddr: "127.0.0.1:0"})
	addr := px.Addr(0).String()
	subDead, subPat, subLive, other := proxytest.Dial(t, addr), proxytest.Dial(t, addr), proxytest.Dial(t, addr), proxytest.Dial(t, addr)
	var chans []string
	for i := range 40 {
		chans = append(chans, fmt.Sprintf("news.%d.feed", i))
	}
	psSubscribe(t, subDead, "SUBSCRIBE", chans...)
	holder := map[string]int{} // channel: index of its server
	for i, b := range backends {
		rep := proxytest.BackendDo(t, b.Addr, append([]string{"PUBSUB", "NUMSUB"}, chans...))
		for _, ch := range chans {
			if strings.Contains(rep, proxytest.Bulk(ch)+":1\r\n") {
				holder[ch] = i
			}
		}
	}
	dead := holder[chans[0]]
	live := ""
	for _, ch := range chans {
		if holder[ch] != dead {
			live = ch
		}
	}
	if live == "" {
		t.Fatalf("every channel on one server: %v", holder)
	}
	subLive.Hello3()
	psSubscribe(t, subPat, "PSUBSCRIBE", "x*")
	psSubscribe(t, subLive, "SUBSCRIBE", live)
	if got := other.Do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING: %q", got)
	}
	if park {
		proxytest.WaitStat(t, px, "client_parked", 4)
	}
	proxytest.KillServer(t, backends[dead])
	start := time.Now()
	subDead.ExpectClosed()
	subPat.ExpectClosed()
	t.Logf("subscribers on the killed server closed within %v", time.Since(start).Round(time.Millisecond))
	for i, b := range backends {
		if i == dead {
			continue
		}
		for {
			pat := proxytest.BackendDo(t, b.Addr, []string{"PUBSUB", "NUMPAT"})
			subs := proxytest.BackendDo(t, b.Addr, append([]string{"PUBSUB", "NUMSUB"}, chans...))
			if pat == ":0\r\n" && strings.Count(subs, ":1\r\n") == map[bool]int{true: 1}[holder[live] == i] {
				break
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("server %d: NUMPAT %q, NUMSUB %q 5 s after the subscribers were closed", i, pat, subs)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if got := other.Do("PUBLISH", live, "still"); got != ":1\r\n" {
		t.Errorf("PUBLISH on a live server: %q", got)
	}
	m, rep, err := readMessage(subLive)
	if err != nil || m.channel != live || m.payload != "still" {
		t.Errorf("subscriber on a live server: %q %v", rep.Raw, err)
	}
	if got := subLive.DoAny("PING"); got != "+PONG\r\n" {
		t.Errorf("subscriber on a live server, PING: %q", got)
	}
}

// TestPubSubDisconnectLeavesNothing checks that a subscriber that goes
// leaves no subscription on any server.
func TestPubSubDisconnectLeavesNothing(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 3, proxytest.Pool{HashTag: "{}"})
	var chans []string
	for i := range f.Backends {
		chans = append(chans, f.KeysOn(i, "gone", 2)...)
	}
	sub := proxytest.Dial(t, f.Addr)
	psSubscribe(t, sub, "SUBSCRIBE", chans...)
	psSubscribe(t, sub, "PSUBSCRIBE", "p*", "q*")
	psSubscribe(t, sub, "SSUBSCRIBE", chans[0])
	// count is the subscriptions the servers hold: channels, patterns,
	// shard channels.
	count := func() (total int) {
		for _, b := range f.Backends {
			c := proxytest.Dial(t, b.Addr)
			numsub := c.Do(append([]string{"PUBSUB", "NUMSUB"}, chans...)...)
			total += strings.Count(numsub, "\r\n:1\r\n")
			total += strings.Count(c.Do("PUBSUB", "SHARDNUMSUB", chans[0]), "\r\n:1\r\n")
			n, err := strconv.Atoi(strings.TrimPrefix(proxytest.Text(c.Do("PUBSUB", "NUMPAT")), ":"))
			if err != nil {
				t.Fatal(err)
			}
			total += n
			c.Net.Close()
		}
		return total
	}
	if got, want := count(), len(chans)+2*len(f.Backends)+1; got != want {
		t.Fatalf("%d subscriptions on the servers, want %d", got, want)
	}
	sub.Net.Close()
	start := time.Now()
	for count() != 0 {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("%d subscriptions left on the servers 5 s after the subscriber left", count())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("the servers forgot the subscriptions within %v", time.Since(start).Round(time.Millisecond))
}

// TestPubSubGoRedis runs go-redis's PubSub, RESP2 and RESP3, through a
// pool of three: every message arrives, on channels and patterns.
func TestPubSubGoRedis(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 3, proxytest.Pool{HashTag: "{}"})
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("resp%d", proto), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c := redis.NewClient(&redis.Options{Addr: f.Addr, Protocol: proto, DisableIdentity: true})
			defer c.Close()
			var chans []string
			for i := range 30 {
				chans = append(chans, fmt.Sprintf("gr%d:%d", proto, i))
			}
			ps := c.Subscribe(ctx, chans...)
			defer ps.Close()
			for range chans {
				if _, err := ps.Receive(ctx); err != nil {
					t.Fatalf("Receive a confirmation: %v", err)
				}
			}
			if err := ps.PSubscribe(ctx, fmt.Sprintf("gr%d:1*", proto)); err != nil {
				t.Fatal(err)
			}
			if msg, err := ps.Receive(ctx); err != nil || fmt.Sprint(msg) != fmt.Sprintf("psubscribe: gr%d:1*", proto) {
				t.Fatalf("PSubscribe: %v %v", msg, err)
			}
			want := map[string]int{}
			const n = 600
			for i := range n {
				ch := chans[i%len(chans)]
				got, err := c.Publish(ctx, ch, strconv.Itoa(i)).Result()
				want[ch]++
				if strings.HasPrefix(ch, fmt.Sprintf("gr%d:1", proto)) {
					want[ch+" by pattern"]++
				}
				if err != nil || got < 1 {
					t.Fatalf("PUBLISH: %d %v", got, err)
				}
			}
			total := 0
			for _, v := range want {
				total += v
			}
			got := map[string]int{}
			msgs := ps.Channel()
			for range total {
				select {
				case m := <-msgs:
					if m.Pattern != "" {
						got[m.Channel+" by pattern"]++
					} else {
						got[m.Channel]++
					}
				case <-ctx.Done():
					t.Fatalf("%d of %d messages: %v", len(got), total, ctx.Err())
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("messages per channel: %v, want %v", got, want)
			}
		})
	}
}

// TestPubSubSessionLimit checks the server_sessions bound on subscribers:
// over it a subscription command is refused at once with a clear error,
// and, refused on one server, it was made on none, so the client's
// subscriptions stay as they were.
func TestPubSubSessionLimit(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 3, proxytest.Pool{HashTag: "{}", Keys: []string{"server_sessions: 1"}})
	full := proxytest.Dial(t, f.Addr)
	psSubscribe(t, full, "SUBSCRIBE", f.KeysOn(1, "full", 1)[0]) // server 1's only session
	sub, pub := proxytest.Dial(t, f.Addr), proxytest.Dial(t, f.Addr)
	mine := f.KeysOn(0, "mine", 1)[0]
	psSubscribe(t, sub, "SUBSCRIBE", mine)
	probes := []string{f.KeysOn(0, "p", 1)[0], f.KeysOn(2, "p", 1)[0]}
	for round := range 10 {
		start := time.Now()
		got := sub.Do("PSUBSCRIBE", "p*")
		if took := time.Since(start); !strings.Contains(got, "server_sessions") || took > time.Second {
			t.Fatalf("round %d: PSUBSCRIBE over server_sessions: %q after %v", round, got, took)
		}
		for _, p := range probes {
			if got := pub.Do("PUBLISH", p, "x"); got != ":0\r\n" {
				t.Fatalf("round %d: PUBLISH %s after the refused PSUBSCRIBE: %q (subscribed on a server)", round, p, got)
			}
		}
	}
	if got := sub.Do("PING"); got != "*2\r\n$4\r\npong\r\n$0\r\n\r\n" {
		t.Errorf("PING: %q", got)
	}
	if got := pub.Do("PUBLISH", mine, "m"); got != ":1\r\n" {
		t.Errorf("PUBLISH %s: %q", mine, got)
	}
	if m, rep, err := readMessage(sub); err != nil || m.payload != "m" {
		t.Errorf("message: %q %v", rep.Raw, err)
	}
	if got := sub.Do("UNSUBSCRIBE", mine); got != proxytest.Array(proxytest.Bulk("unsubscribe"), proxytest.Bulk(mine), ":0\r\n") {
		t.Errorf("UNSUBSCRIBE: %q", got)
	}
	if got := sub.Do("PING"); got != "+PONG\r\n" {
		t.Errorf("PING unsubscribed: %q", got)
	}
}
