package sentinel

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
)

// A master's address is decided by asking every Sentinel, never by one
// alone: a Sentinel may lag behind a failover, be misconfigured (another
// deployment's Sentinel monitoring a master of the same name), or name a
// replica or a port that is not Redis at all. The answers are put in order,
// newest config-epoch first and, among equal epochs, named by more
// Sentinels first; with Options.CheckPrimary the first address that passes
// it (the proxy's ROLE check) wins, so an answer with a high epoch naming
// something that is not a primary is passed over for the next. When none
// passes (the primary is down and no failover has ended yet), the address
// most Sentinels name wins.

// ballot is one address the Sentinels named, with how many named it and
// the newest config-epoch given with it.
type ballot struct {
	answer
	votes int
	via   string // the first Sentinel that named it
}

// tally groups answers by address, in the order they are tried: newest
// epoch first, then most votes, then address.
func tally(answers []answer, via []string) []ballot {
	var bs []ballot
	for i, a := range answers {
		j := slices.IndexFunc(bs, func(b ballot) bool { return b.addr == a.addr })
		if j < 0 {
			bs = append(bs, ballot{answer: a, votes: 1, via: via[i]})
			continue
		}
		bs[j].votes++
		bs[j].epoch = max(bs[j].epoch, a.epoch)
	}
	slices.SortFunc(bs, func(a, b ballot) int {
		if c := cmp.Compare(b.epoch, a.epoch); c != 0 {
			return c
		}
		if c := cmp.Compare(b.votes, a.votes); c != 0 {
			return c
		}
		return cmp.Compare(a.addr, b.addr)
	})
	return bs
}

// elect picks the address to follow among the Sentinels' answers for
// master (see the top of this file).
func (w *Watcher) elect(ctx context.Context, master string, answers []answer, via []string) ballot {
	bs := tally(answers, via)
	if w.opt.CheckPrimary == nil || len(bs) == 1 {
		return bs[0]
	}
	for _, b := range bs {
		err := w.opt.CheckPrimary(ctx, master, b.addr)
		if err == nil {
			return b
		}
		w.log.Warn("sentinel: the address named is not a primary: passed over", "master", master, "addr", b.addr,
			"epoch", b.epoch, "named_by", b.votes, "via", b.via, "err", err)
	}
	most := bs[0]
	for _, b := range bs[1:] {
		if b.votes > most.votes {
			most = b
		}
	}
	return most
}

// askAll asks every Sentinel at once for master's address, and returns
// the answers given and the Sentinel of each; failed lists those that
// gave none and why. With early, it returns as soon as a majority of the
// Sentinels have given the same answer (a start need not wait for a
// Sentinel that does not answer).
func (w *Watcher) askAll(ctx context.Context, master string, early bool) (answers []answer, via []string, failed errorList) {
	var wg sync.WaitGroup
	defer wg.Wait() // last: the askers left are cancelled first
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(w.ctx, cancel)
	defer stop()
	type result struct {
		ans  answer
		addr string
		err  error
	}
	n := len(w.opt.Addrs)
	results := make(chan result, n)
	for _, addr := range w.opt.Addrs {
		wg.Go(func() {
			var ans answer
			err := w.askOne(ctx, addr, func(ctx context.Context, c *conn) (err error) {
				ans, err = c.masterAddr(ctx, master)
				return err
			})
			results <- result{ans, addr, err}
		})
	}
	for range n {
		r := <-results
		if r.err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", r.addr, r.err))
			continue
		}
		answers, via = append(answers, r.ans), append(via, r.addr)
		if early && agreeing(answers, r.ans.addr) > n/2 {
			break
		}
	}
	return answers, via, failed
}

// agreeing counts the answers naming addr.
func agreeing(answers []answer, addr string) int {
	k := 0
	for _, a := range answers {
		if a.addr == addr {
			k++
		}
	}
	return k
}

// settle asks every Sentinel for master, elects an address and reports
// it if it is new. It returns the
// address in effect, or an error when no Sentinel answered.
func (w *Watcher) settle(ctx context.Context, master string, early bool) (string, error) {
	since := w.gen(master)
	answers, via, failed := w.askAll(ctx, master, early)
	if w.ctx.Err() != nil {
		return "", ErrClosed
	}
	if len(answers) == 0 {
		if len(w.opt.Addrs) == 0 {
			return "", fmt.Errorf("sentinel: master %s: no Sentinel addresses", master)
		}
		if err := contextErr(ctx); err != nil {
			return "", fmt.Errorf("sentinel: master %s: %w (%w)", master, err, failed)
		}
		return "", fmt.Errorf("sentinel: master %s: no Sentinel gave an answer: %w", master, failed)
	}
	b := w.elect(ctx, master, answers, via)
	how := fmt.Sprintf("%d of %d Sentinels answering, named by %d, first %s", len(answers), len(w.opt.Addrs), b.votes, b.via)
	return w.report(master, b.answer, fromRequery, since, how), nil
}
