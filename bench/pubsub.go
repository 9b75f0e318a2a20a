//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/shardproxy/shardproxy/codec/resp"
)

// The pub/sub publisher's pace: it writes pubBatch PUBLISHes at a time and
// stays at most pubWindow messages ahead of the slowest subscriber, so that
// the run measures a rate that can be kept up, not how much the server and
// the proxy can buffer (Redis cuts a subscriber whose output grows past
// client-output-buffer-limit).
const (
	pubBatch   = 64
	pubWindow  = 1024
	pubPayload = "message-payload-of-32-bytes-0000"
)

// messagePrefix starts every message a RESP2 subscriber of a channel gets.
var messagePrefix = []byte("*3\r\n$7\r\nmessage\r\n")

// fanout is one pub/sub run's progress: how many messages each subscriber
// has read, which paces the publisher.
type fanout struct {
	failOnce
	mu   sync.Mutex
	cond *sync.Cond // signalled when low rises or the run fails
	got  []int      // messages each subscriber has read
	low  int        // the least of got
}

func newFanout(subscribers int) *fanout {
	f := &fanout{got: make([]int, subscribers)}
	f.cond = sync.NewCond(&f.mu)
	return f
}

// advance counts n more messages read by subscriber i.
func (f *fanout) advance(i, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got[i] += n
	if f.got[i]-n > f.low {
		return
	}
	low := f.got[i]
	for _, g := range f.got {
		low = min(low, g)
	}
	if low > f.low {
		f.low = low
		f.cond.Broadcast()
	}
}

// stop fails the run with err and wakes the publisher.
func (f *fanout) stop(err error) {
	f.fail(err)
	f.mu.Lock()
	f.cond.Broadcast()
	f.mu.Unlock()
}

// waitLow waits until every subscriber has read want messages, or the run
// failed.
func (f *fanout) waitLow(want int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.low < want {
		if err := f.failure(); err != nil {
			return err
		}
		f.cond.Wait()
	}
	return nil
}

func (f *fanout) slowest() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.low
}

// runPubSub subscribes subscribers connections to one channel at addr, then
// publishes messages PUBLISHes on another, and measures messages delivered
// per second: subscribers × messages over the time from the first PUBLISH
// to the last subscriber's last message. Every PUBLISH must reach every
// subscriber and every message arrive, else the run fails.
func runPubSub(ctx context.Context, subscribers, messages int, addr string) (runResult, error) {
	channel := "bench:apps:channel:" + strconv.FormatInt(appRun.Add(1), 10)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second+time.Duration(subscribers*messages)*20*time.Microsecond)
	defer cancel()
	conns, err := dialAll(ctx, addr, subscribers+1)
	if err != nil {
		return runResult{}, err
	}
	defer closeAll(conns)
	f := newFanout(subscribers)
	f.conns = conns
	defer context.AfterFunc(ctx, func() {
		f.stop(fmt.Errorf("%w: the slowest subscriber had %d of %d messages", ctx.Err(), f.slowest(), messages))
	})()
	subs := make([]*frameReader, subscribers)
	confirm := append(resp.AppendBulkString(append([]byte("*3\r\n"), "$9\r\nsubscribe\r\n"...), channel), ":1\r\n"...)
	for i := range subs {
		subs[i] = newFrameReader(conns[i])
		if _, err := conns[i].Write(command("SUBSCRIBE", channel)); err != nil {
			return runResult{}, fmt.Errorf("subscriber %d: %w", i, err)
		}
		if err := subs[i].expect(fmt.Sprintf("subscriber %d: SUBSCRIBE", i), confirm); err != nil {
			return runResult{}, f.firstOr(err)
		}
	}
	pub := conns[subscribers]
	start := time.Now()
	finish := make([]time.Time, subscribers)
	var wg sync.WaitGroup
	for i, r := range subs {
		wg.Go(func() {
			var err error
			if finish[i], err = f.receive(i, r, messages); err != nil {
				f.stop(fmt.Errorf("subscriber %d: %w", i, err))
			}
		})
	}
	wg.Go(func() {
		if err := readPublishReplies(newFrameReader(pub), messages); err != nil {
			f.stop(fmt.Errorf("publisher: %w", err))
		}
	})
	if err := f.publish(pub, channel, messages); err != nil {
		f.stop(fmt.Errorf("publisher: %w", err))
	}
	wg.Wait()
	if err := f.failure(); err != nil {
		return runResult{}, err
	}
	end := start
	for _, t := range finish {
		end = later(end, t)
	}
	delivered := int64(subscribers) * int64(messages)
	return runResult{rps: float64(delivered) / end.Sub(start).Seconds(), requests: delivered}, nil
}

// firstOr returns the run's first error, or err if there is none (the
// connection err came from was closed because of the first).
func (f *fanout) firstOr(err error) error {
	if first := f.failure(); first != nil {
		return first
	}
	return err
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// publish writes messages PUBLISHes to channel on conn, pubBatch at a time,
// each batch once the slowest subscriber is within pubWindow messages.
func (f *fanout) publish(conn net.Conn, channel string, messages int) error {
	one := command("PUBLISH", channel, pubPayload)
	batch := bytes.Repeat(one, pubBatch)
	for sent := 0; sent < messages; {
		n := min(pubBatch, messages-sent)
		if err := f.waitLow(sent + n - pubWindow); err != nil {
			return err
		}
		if _, err := conn.Write(batch[:n*len(one)]); err != nil {
			return f.firstOr(err)
		}
		sent += n
	}
	return nil
}

// receive reads messages from subscriber i's connection until it has want,
// and returns when the last arrived.
func (f *fanout) receive(i int, r *frameReader, want int) (time.Time, error) {
	got := 0
	for {
		n := 0
		for {
			m, err := r.buffered()
			if err != nil {
				return time.Time{}, err
			}
			if m == nil {
				break
			}
			if !bytes.HasPrefix(m, messagePrefix) {
				return time.Time{}, fmt.Errorf("got %q, want a message", resp.Clip(m))
			}
			n++
		}
		if n > 0 {
			got += n
			f.advance(i, n)
		}
		if got >= want {
			return time.Now(), nil
		}
		if err := r.fill(); err != nil {
			return time.Time{}, f.firstOr(fmt.Errorf("after %d of %d messages: %w", got, want, err))
		}
	}
}

// readPublishReplies reads count replies to PUBLISH, each of which must be
// an integer (the number of subscribers it reached, which a proxy that
// shares one server subscription among its clients may count its own way:
// the messages the subscribers read are what the run checks).
func readPublishReplies(r *frameReader, count int) error {
	for i := range count {
		f, err := r.next()
		if err != nil {
			return fmt.Errorf("reply %d of %d to PUBLISH: %w", i+1, count, err)
		}
		if f[0] != ':' {
			return fmt.Errorf("reply %d of %d to PUBLISH: got %q, want an integer", i+1, count, resp.Clip(f))
		}
	}
	return nil
}
