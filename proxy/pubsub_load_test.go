package proxy_test

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/proxy"
)

// psSubscribe sends a subscription command for names and reads its
// confirmations, which must be of the command's kind.
func psSubscribe(t *testing.T, c *proxytest.Conn, cmd string, names ...string) {
	t.Helper()
	c.Write(proxytest.EncodeCommand(nil, append([]string{cmd}, names...)...))
	for _, n := range names {
		rep, err := proxytest.ReadReply(c.R)
		if err != nil || len(rep.Elems) != 3 || rep.Elems[0].Str != strings.ToLower(cmd) || rep.Elems[1].Str != n {
			t.Fatalf("%s %s: %q %v", cmd, n, rep.Raw, err)
		}
	}
}

// psMessage is a message as a subscriber reads it.
type psMessage struct {
	kind, pattern, channel, payload string
}

// readMessage reads one message (or, when it is not one, returns ok
// false with the reply).
func readMessage(c *proxytest.Conn) (psMessage, proxytest.Reply, error) {
	rep, err := proxytest.ReadReply(c.R)
	if err != nil {
		return psMessage{}, rep, err
	}
	if (rep.Kind != '*' && rep.Kind != '>') || len(rep.Elems) < 3 {
		return psMessage{}, rep, nil
	}
	e := rep.Elems
	switch {
	case e[0].Str == "pmessage" && len(e) == 4:
		return psMessage{e[0].Str, e[1].Str, e[2].Str, e[3].Str}, rep, nil
	case (e[0].Str == "message" || e[0].Str == "smessage") && len(e) == 3:
		return psMessage{kind: e[0].Str, channel: e[1].Str, payload: e[2].Str}, rep, nil
	}
	return psMessage{}, rep, nil
}

// TestPubSubLoadChannels publishes 10,000 messages over 200 channels
// spread over three servers to one subscriber of them all and of a
// pattern: every message arrives exactly once per subscription it
// matches (twice when it matches the channel and the pattern, as with
// Redis), in each channel's order. A RESP3 subscriber sends GETs among
// the messages and reads their replies between the pushes.
func TestPubSubLoadChannels(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 3, proxytest.Pool{HashTag: "{}"})
	for _, resp3 := range []bool{false, true} {
		t.Run(fmt.Sprintf("resp3=%v", resp3), func(t *testing.T) { loadChannels(t, f, resp3) })
	}
}

func loadChannels(t *testing.T, f *proxytest.RedisFixture, resp3 bool) {
	const nch, nmsg, pattern = 200, 10000, "ch?:1*"
	sub := proxytest.Dial(t, f.Addr)
	if resp3 {
		sub.Hello3()
		if got := sub.Do("SET", "k", "v"); got != "+OK\r\n" {
			t.Fatalf("SET: %q", got)
		}
	}
	// A third of the channels on each server (those of names ch0, ch1...
	// do not spread well under the default hash).
	var chans []string
	for i := range f.Backends {
		chans = append(chans, f.KeysOn(i, fmt.Sprintf("ch%d:", i), nch/len(f.Backends)+1)...)
	}
	chans = chans[:nch]
	psSubscribe(t, sub, "SUBSCRIBE", chans...)
	psSubscribe(t, sub, "PSUBSCRIBE", pattern)
	spread := make([]int, len(f.Backends))
	total := 0
	for i, b := range f.Backends {
		head := proxytest.Text(proxytest.BackendDo(t, b.Addr, []string{"PUBSUB", "CHANNELS"}))
		spread[i], _ = strconv.Atoi(strings.TrimPrefix(head, "*"))
		total += spread[i]
	}
	if total != nch || slices.Contains(spread, 0) {
		t.Fatalf("channels per server: %v, want %d spread over all", spread, nch)
	}
	matches := func(i int) bool { return strings.HasPrefix(chans[i%nch][3:], ":1") }
	want := nmsg
	cmds := make([][]string, nmsg)
	for i := range cmds {
		cmds[i] = []string{"PUBLISH", chans[i%nch], strconv.Itoa(i)}
		if matches(i) {
			want++
		}
	}
	start := time.Now()
	published := make(chan error, 1)
	go func() {
		replies, err := proxytest.PipelineErr(f.Addr, cmds)
		for i := 0; err == nil && i < len(replies); i++ {
			if exp := map[bool]string{false: ":1\r\n", true: ":2\r\n"}[matches(i)]; replies[i] != exp {
				err = fmt.Errorf("PUBLISH %d: %q, want %q", i, replies[i], exp)
			}
		}
		published <- err
	}()
	seen := map[string][]bool{"message": make([]bool, nmsg), "pmessage": make([]bool, nmsg)}
	last := map[string]int{}
	got, gets, replies := 0, 0, 0
	for got < want || replies < gets {
		m, rep, err := readMessage(sub)
		if err != nil {
			t.Fatalf("after %d of %d messages: %v", got, want, err)
		}
		if m.kind == "" {
			if rep.Raw != "$1\r\nv\r\n" || !resp3 {
				t.Fatalf("after %d messages: not a message: %q", got, rep.Raw)
			}
			replies++
			continue
		}
		i, err := strconv.Atoi(m.payload)
		if err != nil || i >= nmsg || m.channel != chans[i%nch] || m.kind == "pmessage" && (m.pattern != pattern || !matches(i)) {
			t.Fatalf("bad message %+v", m)
		}
		if seen[m.kind][i] {
			t.Fatalf("%s %d delivered twice", m.kind, i)
		}
		seen[m.kind][i] = true
		key := m.kind + " " + m.channel
		if prev, ok := last[key]; ok && prev >= i {
			t.Fatalf("%s: %d after %d", key, i, prev)
		}
		last[key] = i
		got++
		if resp3 && got%100 == 0 {
			sub.Write(proxytest.EncodeCommand(nil, "GET", "k"))
			gets++
		}
	}
	elapsed := time.Since(start)
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d messages (%d published) to one subscriber in %v: %.0f messages/s; %d GETs answered among them",
		got, nmsg, elapsed.Round(time.Millisecond), float64(got)/elapsed.Seconds(), replies)
}

// TestPubSubManySubscribers checks that every one of 300 subscribers of
// one channel gets every message, in order.
func TestPubSubManySubscribers(t *testing.T) {
	const nsub, nmsg = 300, 50
	f := proxytest.NewRedisFixture(t, 3, proxytest.Pool{HashTag: "{}", Keys: []string{"server_sessions: 400"}})
	subs := make([]*proxytest.Conn, nsub)
	for i := range subs {
		subs[i] = proxytest.Dial(t, f.Addr)
		psSubscribe(t, subs[i], "SUBSCRIBE", "news")
	}
	pub := proxytest.Dial(t, f.Addr)
	start := time.Now()
	for i := range nmsg {
		if got := pub.Do("PUBLISH", "news", strconv.Itoa(i)); got != fmt.Sprintf(":%d\r\n", nsub) {
			t.Fatalf("PUBLISH %d: %q", i, got)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, nsub)
	for s, c := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range nmsg {
				m, rep, err := readMessage(c)
				if err != nil || m.channel != "news" || m.payload != strconv.Itoa(i) {
					errs <- fmt.Errorf("subscriber %d, message %d: %q %v", s, i, rep.Raw, err)
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
	elapsed := time.Since(start)
	t.Logf("%d messages to each of %d subscribers in %v: %.0f deliveries/s", nmsg, nsub,
		elapsed.Round(time.Millisecond), float64(nmsg*nsub)/elapsed.Seconds())
}

// TestPubSubIdleSubscriber checks that a subscriber is not cut by
// client_idle_timeout, as Redis does not time out subscribers, while an
// idle client that is not subscribed is; and that subscribers, parked
// after client_park_after, get their messages and are answered.
func TestPubSubIdleSubscriber(t *testing.T) {
	f := proxytest.NewRedisFixture(t, 3, proxytest.Pool{HashTag: "{}",
		Keys: []string{"client_idle_timeout: 1000", "client_park_after: 100"}})
	idle := proxytest.Dial(t, f.Addr)
	if got := idle.Do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING: %q", got)
	}
	sub2, sub3 := proxytest.Dial(t, f.Addr), proxytest.Dial(t, f.Addr)
	sub3.Hello3()
	for _, c := range []*proxytest.Conn{sub2, sub3} {
		psSubscribe(t, c, "SUBSCRIBE", "a", "b")
		psSubscribe(t, c, "PSUBSCRIBE", "n*")
	}
	start := time.Now()
	idle.ExpectClosed()
	t.Logf("the idle client not subscribed was closed after %v", time.Since(start).Round(time.Millisecond))
	time.Sleep(3*time.Second - time.Since(start))
	pub := proxytest.Dial(t, f.Addr)
	for _, ch := range []string{"a", "b", "news"} {
		if got := pub.Do("PUBLISH", ch, "after "+ch); got != ":2\r\n" {
			t.Fatalf("PUBLISH %s after 3 s: %q", ch, got)
		}
	}
	for i, c := range []*proxytest.Conn{sub2, sub3} {
		for _, ch := range []string{"a", "b", "news"} {
			m, rep, err := readMessage(c)
			if err != nil || m.channel != ch || m.payload != "after "+ch {
				t.Fatalf("subscriber %d after 3 s idle: %q %v", i, rep.Raw, err)
			}
		}
	}
	if got := sub2.Do("PING"); got != "*2\r\n$4\r\npong\r\n$0\r\n\r\n" {
		t.Errorf("RESP2 subscriber's PING after parking: %q", got)
	}
	if got := sub3.DoAny("GET", "nokey"); got != "_\r\n" {
		t.Errorf("RESP3 subscriber's GET after parking: %q", got)
	}
	psSubscribe(t, sub2, "UNSUBSCRIBE", "a", "b")
	psSubscribe(t, sub2, "PUNSUBSCRIBE", "n*")
	// No longer subscribed: the idle timeout applies again.
	start = time.Now()
	sub2.ExpectClosed()
	t.Logf("unsubscribed, the client was closed after %v", time.Since(start).Round(time.Millisecond))
}

// TestPubSubSlowSubscriber checks that a subscriber that does not read
// is closed once its unread messages pass client_output_limit (as Redis's
// client-output-buffer-limit closes it), not left to grow the proxy's
// memory without end; and that subscribers that leave while messages
// pour in are ended cleanly.
func TestPubSubSlowSubscriber(t *testing.T) {
	backends := proxytest.StartRedisBackends(t, 2)
	px := proxytest.StartProxyOpts(t, proxytest.PoolYAML(proxytest.FreeListen(t), backends, "client_output_limit: 1048576"),
		proxy.Options{StatsAddr: "127.0.0.1:0"})
	addr := px.Addr(0).String()
	slow := proxytest.Dial(t, addr)
	psSubscribe(t, slow, "SUBSCRIBE", "flood")
	var leaving []*proxytest.Conn
	for range 20 {
		c := proxytest.Dial(t, addr)
		psSubscribe(t, c, "SUBSCRIBE", "flood")
		leaving = append(leaving, c)
	}
	pub := proxytest.Dial(t, addr)
	payload := strings.Repeat("x", 64<<10)
	start := time.Now()
	sent := 0
	for ; sent < 1000 && proxytest.PoolStat(t, px, "client_overflow") == 0; sent++ {
		if got := pub.Do("PUBLISH", "flood", payload); !strings.HasPrefix(got, ":") {
			t.Fatalf("PUBLISH: %q", got)
		}
		if sent == 10 {
			for _, c := range leaving {
				c.Net.Close()
			}
		}
	}
	t.Logf("client_overflow after %d messages of 64 KiB (%v)", sent, time.Since(start).Round(time.Millisecond))
	proxytest.WaitStat(t, px, "client_connections", 1) // the publisher
	slow.Net.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, slow.R); err != nil && !proxytest.IsReset(err) {
		t.Errorf("slow subscriber: %v, want its connection closed", err)
	}
	for _, b := range backends {
		if got := proxytest.BackendDo(t, b.Addr, []string{"PUBSUB", "NUMSUB", "flood"}); strings.HasSuffix(got, ":0\r\n") {
			continue
		}
		t.Errorf("%s still has subscribers of flood", b.Addr)
	}
}
