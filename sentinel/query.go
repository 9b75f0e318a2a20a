package sentinel

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// ErrClosed is the error of Resolve and Replicas after Close.
var ErrClosed = errors.New("sentinel: watcher closed")

// Resolve asks the Sentinels, one after the other starting at a rotating
// one, for master's address (SENTINEL GET-MASTER-ADDR-BY-NAME), and returns
// the first answer as "ip:port" (an IPv6 address in brackets). The answer
// of a master in Options.Masters is reported as by OnSwitch; if it is
// older (a lower config-epoch) than the address reported before, which
// happens when a Sentinel has not yet learned of a failover, Resolve
// returns the address reported before, and starts a Requery.
//
// The error, when no Sentinel gives an address, says why each failed; it
// wraps ErrUnknownMaster when a Sentinel does not know master, and
// ErrClosed after Close.
func (w *Watcher) Resolve(ctx context.Context, master string) (string, error) {
	var ans answer
	via, err := w.ask(ctx, master, func(ctx context.Context, c *conn) (err error) {
		ans, err = c.masterAddr(ctx, master)
		return err
	})
	if err != nil {
		return "", err
	}
	if !w.masters[master] {
		return ans.addr, nil
	}
	return w.report(master, ans, fromQuery, 0, "query to "+via), nil
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
// answer with the highest config-epoch.
func (w *Watcher) requeryAll(master string) {
	since := w.gen(master)
	answers := make([]answer, len(w.opt.Addrs))
	errs := make([]error, len(w.opt.Addrs))
	var wg sync.WaitGroup
	for i, addr := range w.opt.Addrs {
		wg.Go(func() {
			errs[i] = w.askOne(w.ctx, addr, func(ctx context.Context, c *conn) (err error) {
				answers[i], err = c.masterAddr(ctx, master)
				return err
			})
		})
	}
	wg.Wait()
	best := -1
	var failed errorList
	for i, err := range errs {
		switch {
		case err != nil:
			failed = append(failed, fmt.Errorf("%s: %w", w.opt.Addrs[i], err))
		case best < 0 || answers[i].epoch > answers[best].epoch:
			best = i
		}
	}
	if best < 0 {
		if w.ctx.Err() == nil {
			w.log.Debug("sentinel: requery failed", "master", master, "err", failed)
		}
		return
	}
	w.report(master, answers[best], fromRequery, since, "requery, newest from "+w.opt.Addrs[best])
}
