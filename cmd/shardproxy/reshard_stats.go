package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/stats"
)

// statsFetchTimeout bounds one read of a stats port.
const statsFetchTimeout = 5 * time.Second

// fetchStats reads the stats JSON a proxy's stats port answers with.
func fetchStats(addr string, timeout time.Duration) (*stats.Document, error) {
	b, err := stats.Read(addr, timeout)
	if err != nil {
		return nil, fmt.Errorf("unreachable on its stats port: %w", err)
	}
	doc, err := stats.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("its stats port answers no stats JSON: %w", err)
	}
	if doc.Digest == "" {
		return nil, errors.New("its stats have no config_digest: not a shardproxy (nutcracker has no migrations)")
	}
	return doc, nil
}

// watch is the state of "reshard --stats" between two looks.
type watch struct {
	o        *reshardOptions
	cfg      *config.Config // nil without -c
	addrs    []string
	pools    []string // the pools watched, chosen at the first look
	w        io.Writer
	tty      bool
	start    time.Time
	looks    int
	maxPend  map[string]int64 // per proxy and pool: the most old owners pending seen
	errs     map[string]int64 // per proxy and pool: migration_errors at the last look
	moved0   int64            // keys moved at the first look
	done0    int64            // old owners scanned at the first look
	lastMove int64
	lastAt   time.Time
	drawn    bool // a progress line is on the terminal, without its newline
}

// watchStats watches the proxies at addrs until each reports
// migration_pending 0 for the pools watched, and returns why it stopped
// early otherwise.
func watchStats(cfg *config.Config, o *reshardOptions, addrs []string, w io.Writer) error {
	if len(addrs) == 0 {
		return errors.New("--stats needs at least one host:port")
	}
	wt := &watch{o: o, cfg: cfg, addrs: addrs, w: w, tty: writesToTerminal(w), start: time.Now(),
		maxPend: map[string]int64{}, errs: map[string]int64{}}
	var deadline time.Time
	if o.timeout > 0 {
		deadline = wt.start.Add(o.timeout)
	}
	for {
		fetch := statsFetchTimeout
		if !deadline.IsZero() {
			fetch = min(fetch, max(time.Until(deadline), 100*time.Millisecond))
		}
		snaps, err := lookAll(addrs, fetch)
		if err == nil {
			err = wt.checkDigests(snaps)
		}
		if err == nil && wt.looks == 0 {
			err = wt.choosePools(snaps)
		}
		var complete bool
		if err == nil {
			complete, err = wt.report(snaps, time.Now())
		}
		wt.looks++
		if err != nil || complete {
			wt.endLine()
			return err
		}
		wait := o.interval
		if !deadline.IsZero() {
			if time.Until(deadline) <= 0 {
				wt.endLine()
				return fmt.Errorf("timeout after %v: the migration is not complete (%s)", o.timeout, wt.pendingText(snaps))
			}
			wait = min(wait, time.Until(deadline))
		}
		time.Sleep(wait)
	}
}

// lookAll reads every proxy's stats at once; the first failure is
// returned, naming its proxy.
func lookAll(addrs []string, timeout time.Duration) ([]*stats.Document, error) {
	snaps := make([]*stats.Document, len(addrs))
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			snaps[i], errs[i] = fetchStats(a, timeout)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("proxy %s: %w", addrs[i], err)
		}
	}
	return snaps, nil
}

// checkDigests requires every proxy to run the same file, and the file of
// -c when given.
func (wt *watch) checkDigests(snaps []*stats.Document) error {
	for i, s := range snaps {
		if wt.cfg != nil && s.Digest != wt.cfg.Digest {
			return fmt.Errorf("config digest mismatch: proxy %s runs config_digest %s, not %s of %s: "+
				"every proxy must run the file with migrate_from; reload it", wt.addrs[i], s.Digest, wt.cfg.Digest, wt.o.confFile)
		}
		if s.Digest != snaps[0].Digest {
			return fmt.Errorf("config digest mismatch: proxy %s runs config_digest %s but proxy %s runs %s: "+
				"every proxy must run the same file; reload the one that differs", wt.addrs[0], snaps[0].Digest, wt.addrs[i], s.Digest)
		}
	}
	return nil
}

// choosePools picks the pools to watch: --pool, else the file's pools
// with migrate_from, else every pool the proxies report.
func (wt *watch) choosePools(snaps []*stats.Document) error {
	switch {
	case wt.o.pool != "":
		wt.pools = []string{wt.o.pool}
	case wt.cfg != nil:
		for _, p := range migratingPools(wt.cfg, "") {
			wt.pools = append(wt.pools, p.Name)
		}
		if len(wt.pools) == 0 {
			return fmt.Errorf("%s has no pool with migrate_from: nothing to watch", wt.o.confFile)
		}
	default:
		for name := range snaps[0].Pools {
			wt.pools = append(wt.pools, name)
		}
		slices.Sort(wt.pools)
		if len(wt.pools) == 0 {
			return fmt.Errorf("proxy %s reports no redis pool", wt.addrs[0])
		}
	}
	fmt.Fprintf(wt.w, "watching pool %s on %s (config_digest %s)\n",
		strings.Join(wt.pools, ", "), plural(len(snaps), "proxy", "proxies"), snaps[0].Digest)
	return nil
}

// report prints the progress of one look and whether the migration is
// complete; rising migration_errors are printed, and are an error with
// --fail-on-error.
func (wt *watch) report(snaps []*stats.Document, now time.Time) (complete bool, err error) {
	var pending, moved, errs, owners int64
	var rising []string
	waiting := 0
	for i, s := range snaps {
		for _, pool := range wt.pools {
			c, ok := s.Pools[pool]
			if !ok {
				return false, fmt.Errorf("proxy %s has no redis pool %q", wt.addrs[i], pool)
			}
			k := wt.addrs[i] + " " + pool
			wt.maxPend[k] = max(wt.maxPend[k], c.Pending)
			if prev, seen := wt.errs[k]; seen && c.Errors > prev {
				rising = append(rising, fmt.Sprintf("proxy %s pool %s: migration_errors %d (+%d)",
					wt.addrs[i], pool, c.Errors, c.Errors-prev))
			} else if !seen && c.Errors > 0 {
				wt.println(fmt.Sprintf("proxy %s pool %s: migration_errors %d before this watch", wt.addrs[i], pool, c.Errors))
			}
			wt.errs[k] = c.Errors
			if c.Waiting() {
				waiting++
			}
			pending, moved, errs, owners = pending+c.Pending, moved+c.Moved, errs+c.Errors, owners+wt.maxPend[k]
		}
	}
	for _, r := range rising {
		wt.println(r + " (see the proxy's log)")
	}
	if len(rising) > 0 && wt.o.failOnError {
		return false, fmt.Errorf("migration_errors rose (%d in all) and --fail-on-error is set", errs)
	}
	if wt.looks == 0 {
		wt.moved0, wt.done0 = moved, owners-pending
	}
	wt.progress(owners-pending, owners, moved, waiting, now)
	if pending > 0 {
		return false, nil
	}
	wt.endLine()
	fmt.Fprintf(wt.w, "migration complete: every proxy (%d) reports migration_pending 0; keys moved %d, migration_errors %d\n",
		len(snaps), moved, errs)
	if wt.looks == 0 && moved == 0 {
		fmt.Fprintf(wt.w, "(complete at the first look with no key moved: was a migration configured?)\n")
	}
	fmt.Fprintf(wt.w, "next: remove migrate_from from the file, check it with shardproxy -t, and reload every proxy\n")
	return true, nil
}

// progress draws the progress line: redrawn in place on a terminal, a line
// per look otherwise.
func (wt *watch) progress(done, owners, moved int64, waiting int, now time.Time) {
	rate := "- keys/s"
	if wt.looks > 0 {
		if dt := now.Sub(wt.lastAt).Seconds(); dt > 0 {
			rate = fmt.Sprintf("%.0f keys/s", float64(moved-wt.lastMove)/dt)
		}
	}
	wt.lastMove, wt.lastAt = moved, now
	eta := "ETA -"
	if d := done - wt.done0; d > 0 && done < owners {
		left := time.Duration(float64(now.Sub(wt.start)) * float64(owners-done) / float64(d))
		round := time.Second
		if left < 10*time.Second {
			round = 100 * time.Millisecond
		}
		eta = "ETA ~" + left.Round(round).String()
	} else if done >= owners {
		eta = "done"
	}
	line := fmt.Sprintf("%s %d/%d old owners scanned  keys moved %d (+%d)  %s  %s",
		bar(done, owners, 20), done, owners, moved, moved-wt.moved0, rate, eta)
	if waiting > 0 {
		line += fmt.Sprintf("  not started on %s (start_at)", plural(waiting, "pool of a proxy", "pools of proxies"))
	}
	if wt.tty {
		fmt.Fprintf(wt.w, "\r\x1b[K%s", line)
		wt.drawn = true
		return
	}
	fmt.Fprintln(wt.w, line)
}

// println prints a line of its own, below any progress line.
func (wt *watch) println(s string) {
	wt.endLine()
	fmt.Fprintln(wt.w, s)
}

// endLine ends the progress line on a terminal.
func (wt *watch) endLine() {
	if wt.drawn {
		fmt.Fprintln(wt.w)
		wt.drawn = false
	}
}

// pendingText says which proxies and pools still have old owners to scan.
func (wt *watch) pendingText(snaps []*stats.Document) string {
	var parts []string
	for i, s := range snaps {
		for _, pool := range wt.pools {
			if n := s.Pools[pool].Pending; n > 0 {
				parts = append(parts, fmt.Sprintf("proxy %s pool %s: migration_pending %d", wt.addrs[i], pool, n))
			}
		}
	}
	return strings.Join(parts, "; ")
}

// bar draws done of total as "[#####.....]" of width cells.
func bar(done, total int64, width int) string {
	fill := width
	if total > 0 {
		fill = int(int64(width) * done / total)
	}
	return "[" + strings.Repeat("#", fill) + strings.Repeat(".", width-fill) + "]"
}

// writesToTerminal reports whether w is a terminal.
func writesToTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// plural writes n and the noun's form for it.
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
