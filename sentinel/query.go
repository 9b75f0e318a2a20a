package sentinel

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrClosed is the error of Resolve and Replicas after Close.
var ErrClosed = errors.New("sentinel: watcher closed")

// Resolve asks every Sentinel at once for master's address (SENTINEL
// GET-MASTER-ADDR-BY-NAME, with the master's config-epoch), and returns the
// address elected from their answers as "ip:port" (an IPv6 address in
// brackets): see vote.go. It returns once every Sentinel has answered or
// failed, or a majority agree. For a master in Options.Masters the address
// is reported as by OnSwitch; if it is older (a lower config-epoch) than
// the address reported before, Resolve returns the address reported
// before.
//
// The error, when no Sentinel gives an address, says why each failed; it
// wraps ErrUnknownMaster when a Sentinel does not know master, and
// ErrClosed after Close.
func (w *Watcher) Resolve(ctx context.Context, master string) (string, error) {
	if w.ctx.Err() != nil {
		return "", ErrClosed
	}
	if w.masters[master] {
		return w.settle(ctx, master, true)
	}
	answers, via, failed := w.askAll(ctx, master, true)
	if len(answers) == 0 {
		if err := contextErr(ctx); err != nil {
			return "", fmt.Errorf("sentinel: master %s: %w (%w)", master, err, failed)
		}
		return "", fmt.Errorf("sentinel: master %s: no Sentinel gave an answer: %w", master, failed)
	}
	return w.elect(ctx, master, answers, via).addr, nil
}

// Settle asks every Sentinel for master as Resolve does, but waits for
// each to answer or fail (Options.Timeout) rather than for a majority: an
// answer with a newer config-epoch, from the Sentinel leading a failover,
// is not left out. It is for a master in Options.Masters.
func (w *Watcher) Settle(ctx context.Context, master string) (string, error) {
	if w.ctx.Err() != nil {
		return "", ErrClosed
	}
	return w.settle(ctx, master, false)
}

// Replicas asks the Sentinels, as Resolve does, for master's replicas
// (SENTINEL REPLICAS), and returns as "ip:port" those the Sentinel does not
// flag s_down, o_down or disconnected: where the proxy may send reads.
func (w *Watcher) Replicas(ctx context.Context, master string) ([]string, error) {
	var addrs []string
	_, err := w.ask(ctx, master, func(ctx context.Context, c *conn) (err error) {
		addrs, err = c.replicas(ctx, master)
		return err
	})
	return addrs, err
}

// ask calls fn with a connection to one Sentinel after another, starting
// at a rotating one, until fn succeeds, and returns the address of that
// Sentinel; or an error that tells why each Sentinel failed.
func (w *Watcher) ask(ctx context.Context, master string, fn func(context.Context, *conn) error) (string, error) {
	if w.ctx.Err() != nil {
		return "", ErrClosed
	}
	n := len(w.opt.Addrs)
	if n == 0 {
		return "", fmt.Errorf("sentinel: master %s: no Sentinel addresses", master)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(w.ctx, cancel)
	defer stop()
	start := int(w.next.Add(1)-1) % n
	var errs errorList
	for i := range n {
		addr := w.opt.Addrs[(start+i)%n]
		err := w.askOne(ctx, addr, fn)
		if err == nil {
			return addr, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
		if contextErr(ctx) != nil {
			break
		}
	}
	if w.ctx.Err() != nil {
		return "", ErrClosed
	}
	if err := contextErr(ctx); err != nil {
		return "", fmt.Errorf("sentinel: master %s: %w (%w)", master, err, errs)
	}
	return "", fmt.Errorf("sentinel: master %s: no Sentinel gave an answer: %w", master, errs)
}

// askOne calls fn with a new connection to the Sentinel at addr.
func (w *Watcher) askOne(ctx context.Context, addr string, fn func(context.Context, *conn) error) error {
	c, err := dial(ctx, addr, &w.opt)
	if err != nil {
		return err
	}
	defer c.close()
	return fn(ctx, c)
}

// errorList is the errors of several Sentinels, told on one line.
type errorList []error

func (l errorList) Error() string {
	s := make([]string, len(l))
	for i, err := range l {
		s[i] = err.Error()
	}
	return strings.Join(s, "; ")
}

func (l errorList) Unwrap() []error { return l }

// requeryEvery is the least time between the starts of two queries of
// Requery for one master.
const requeryEvery = 200 * time.Millisecond

// requery is the state of Requery for one master.
type requery struct {
	running bool      // a goroutine queries, or waits to
	pending bool      // Requery was called since its query began
	last    time.Time // when the last query began
}

// Requery asks every Sentinel for master's address in the background and
// reports, as OnSwitch does, the answer with the highest config-epoch: the
// newest. Calls are coalesced: one query at a time per master, at most one
// every 200 ms, and a call made while a query runs is followed by one more
// query once it ends. The proxy calls it when a connection to a master
// fails or a master answers -READONLY. Masters not in Options.Masters are
// ignored.
func (w *Watcher) Requery(master string) {
	if !w.masters[master] {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ctx.Err() != nil {
		return
	}
	q := w.requeries[master]
	if q == nil {
		q = &requery{}
		w.requeries[master] = q
	}
	if q.running {
		q.pending = true
		return
	}
	q.running = true
	w.wg.Add(1)
	go w.requeryLoop(master, q)
}

// requeryLoop queries for master until no Requery is pending, waiting
// requeryEvery between queries.
func (w *Watcher) requeryLoop(master string, q *requery) {
	defer w.wg.Done()
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		if wait := time.Until(q.last.Add(requeryEvery)); wait > 0 {
			w.mu.Unlock()
			open := w.sleep(wait)
			w.mu.Lock()
			if !open {
				break
			}
		}
		q.last, q.pending = time.Now(), false
		w.mu.Unlock()
		w.requeryAll(master)
		w.mu.Lock()
		if !q.pending || w.ctx.Err() != nil {
			break
		}
	}
	q.running = false
}

// requeryAll asks every Sentinel at once for master and reports the
// address elected from their answers.
func (w *Watcher) requeryAll(master string) {
	if _, err := w.settle(w.ctx, master, false); err != nil && w.ctx.Err() == nil {
		w.log.Debug("sentinel: requery failed", "master", master, "err", err)
	}
}
