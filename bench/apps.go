//go:build linux

package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// appCase is one row of the apps section, the traffic of job queues and
// chat applications: pub/sub fan-out, or a blocking pop's ping-pong.
type appCase struct {
	label       string
	subscribers int // pub/sub: subscribers of the one channel; 0 for the BLPOP/LPUSH ping-pong
	count       int // pub/sub: messages published; ping-pong: round trips
}

func (c appCase) pubsub() bool { return c.subscribers > 0 }

// run measures the case once against addr.
func (c appCase) run(ctx context.Context, addr string) (runResult, error) {
	if c.pubsub() {
		return runPubSub(ctx, c.subscribers, c.count, addr)
	}
	return runPingPong(ctx, c.count, addr)
}

// appRow is one apps row, measured directly and through shardproxy;
// nutcracker serves neither pub/sub nor blocking commands.
type appRow struct {
	appCase
	direct, proxy cell
	proxyNA       bool // the proxy under test is not shardproxy (a nutcracker standing in)
}

// appsCases lists the rows: pub/sub to 1 and to 50 subscribers, and the
// ping-pong. -quick keeps all three, with small counts (n is then 2000).
func appsCases(n int) []appCase {
	return []appCase{
		{label: "1 subscriber", subscribers: 1, count: 5 * n},
		{label: "50 subscribers", subscribers: 50, count: max(n/2, 100)},
		{label: "BLPOP/LPUSH ping-pong", count: max(n/4, 100)},
	}
}

// appsSection measures the apps rows. A failed run fails its cell, the
// table lists its error under it, and the section goes on.
func (b *bench) appsSection(cases []appCase) (string, error) {
	var rows []appRow
	defer func() { b.results.apps = rows }()
	for _, c := range cases {
		r, err := b.measureAppRow(c)
		rows = append(rows, r)
		if err != nil {
			return renderApps(rows), err
		}
	}
	return renderApps(rows), nil
}

// measureAppRow runs case c directly and through shardproxy, interleaved.
func (b *bench) measureAppRow(c appCase) (appRow, error) {
	r := appRow{appCase: c, proxyNA: !b.o.proxyApps}
	legs := []leg{{name: "direct", addr: b.cl.redis[direct], fn: c.run}}
	if !r.proxyNA {
		legs = append(legs, leg{name: "shardproxy", addr: b.cl.redis[shardproxy], pid: b.cl.pid[shardproxy], fn: c.run})
	}
	cells, err := b.measureLegs(r.name(), "-", legs)
	r.direct = cells[0]
	if !r.proxyNA {
		r.proxy = cells[1]
	}
	return r, err
}

// name is the row's name in progress and failure lines.
func (r appRow) name() string {
	if r.pubsub() {
		return "pub/sub " + r.label
	}
	return r.label
}

const (
	pubsubTitle   = "Pub/sub: one publisher (PUBLISH, %d pipelined, at most %d ahead of the slowest subscriber), subscribers of one channel"
	pingpongTitle = "Blocking commands: BLPOP/LPUSH ping-pong of two clients (A: BLPOP q1 0, LPUSH q2; B: LPUSH q1, BLPOP q2 0)"
)

var (
	pubsubHeader = []string{"subscribers", "published", "delivered", "direct msg/s", "nutcracker msg/s",
		"shardproxy msg/s", "proxy/direct", "CPU µs/msg proxy"}
	pingpongHeader = []string{"test", "round trips", "direct rt/s", "nutcracker rt/s", "shardproxy rt/s", "proxy/direct",
		"p50 ms direct", "p50 ms proxy", "p99 ms direct", "p99 ms proxy", "CPU µs/rt proxy"}
)

// renderApps formats the pub/sub rows and the ping-pong rows as two
// Markdown tables, each followed by what was not measured and the error of
// every failed cell.
func renderApps(rows []appRow) string {
	var pub, ping []appRow
	for _, r := range rows {
		if r.pubsub() {
			pub = append(pub, r)
		} else {
			ping = append(ping, r)
		}
	}
	var text string
	if len(pub) > 0 {
		text += appTable(fmt.Sprintf(pubsubTitle, pubBatch, pubWindow), pubsubHeader, pub, pubsubLine,
			"msg/s: messages delivered per second, to all subscribers together; CPU µs/msg: the proxy's CPU per delivered message")
	}
	if len(ping) > 0 {
		text += appTable(pingpongTitle, pingpongHeader, ping, pingpongLine,
			"rt/s: round trips per second; p50, p99: latency of a round trip, B's LPUSH to its BLPOP's reply "+
				"(medians over the rounds); CPU µs/rt: the proxy's CPU per round trip (4 commands)")
	}
	return text
}

// appTable renders one table of rows, then its notes.
func appTable(title string, header []string, rows []appRow, line func(appRow) []string, note string) string {
	var lines [][]string
	var failed []string
	for _, r := range rows {
		lines = append(lines, line(r))
		for _, f := range []struct {
			name string
			c    cell
		}{{"direct", r.direct}, {"shardproxy", r.proxy}} {
			if f.c.err != nil {
				failed = append(failed, fmt.Sprintf("- %s on %s failed: %v\n", r.name(), f.name, f.c.err))
			}
		}
	}
	text := strings.TrimSuffix(markdown(title, header, lines), "\n")
	text += "\n" + note + ". nutcracker: n/a, it serves neither pub/sub nor blocking commands.\n"
	if len(rows) > 0 && rows[0].proxyNA {
		text += "shardproxy: n/a, the proxy under test is not shardproxy.\n"
	}
	if len(failed) > 0 {
		text += "\n" + strings.Join(failed, "")
	}
	return text + "\n"
}

func pubsubLine(r appRow) []string {
	d, s := r.direct, r.proxy
	sc, sok := s.cpuPerReq()
	l := []string{strconv.Itoa(r.subscribers), strconv.Itoa(r.count), strconv.Itoa(r.subscribers * r.count),
		rps(d), "n/a", rps(s), ratio(s.res.rps, d.res.rps, okPair(s, d)), cpuNum(sc, sok, s.coarse)}
	return markNA(l, r.proxyNA, 5, 6, 7)
}

func pingpongLine(r appRow) []string {
	d, s := r.direct, r.proxy
	sc, sok := s.cpuPerReq()
	l := []string{r.label, strconv.Itoa(r.count), rps(d), "n/a", rps(s), ratio(s.res.rps, d.res.rps, okPair(s, d)),
		latency(d, d.res.p50), latency(s, s.res.p50), latency(d, d.res.p99), latency(s, s.res.p99), cpuNum(sc, sok, s.coarse)}
	return markNA(l, r.proxyNA, 4, 5, 7, 9, 10)
}

// markNA marks columns cols of l as not measured when na: the proxy's,
// when the proxy under test is not shardproxy.
func markNA(l []string, na bool, cols ...int) []string {
	if na {
		for _, i := range cols {
			l[i] = "n/a"
		}
	}
	return l
}
