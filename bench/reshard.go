//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/stats"
)

// The reshard section measures shardproxy's data migration (migrate_from):
// a pool of three fresh redis-servers holding reshardKeys keys is
// reconfigured onto four and reloaded with SIGUSR1, and the proxy's stats
// are polled until migration_pending is 0. It runs twice: alone, and under
// a GET/SET client load whose latency is compared with the same load's on
// the same proxy before the reload.

const (
	reshardPool    = "reshard"
	reshardRate    = 1000000 // migrate_rate: far above what the machine moves, so the mover is not held back
	reshardValue   = 100     // bytes per value
	reshardOld     = 3       // servers before the migration; one more after
	reshardClients = 10      // connections of the client load, one request in flight each
	fillConns      = 4       // connections writing the keys
	fillBatch      = 256     // SETs per pipelined write while filling
	reshardTimeout = 90 * time.Second
	pollEvery      = 20 * time.Millisecond // stats polls while the migration runs
)

// reshardValueBytes is every key's value.
var reshardValueBytes = []byte(strings.Repeat("v", reshardValue))

// reshardKeys is the number of keys in the pool: 200,000, 20,000 with -quick.
func reshardKeys(quick bool) int {
	if quick {
		return 20000
	}
	return 200000
}

// loadPhases returns how long the client load runs before it is measured
// (new connections, cold caches) and then how long it is measured without
// a migration.
func loadPhases(quick bool) (warmup, baseline time.Duration) {
	if quick {
		return 200 * time.Millisecond, time.Second
	}
	return 500 * time.Millisecond, 5 * time.Second
}

// reshardRun is one measured migration.
type reshardRun struct {
	label    string
	withLoad bool
	keys     int
	moved    int64         // keys the servers gained (arrived): the keys that changed owner
	counted  int64         // keys_migrated meanwhile: the mover's and on-access MIGRATEs' keys
	took     time.Duration // from SIGUSR1 until migration_pending 0
	before   loadResult    // the client load with no migration, on the old placement
	during   loadResult    // the client load while the migration ran
	err      error
}

// reshardSection runs the migration without and with client load. A
// -proxy-bin that is not shardproxy has no migrations: the section says
// so and measures nothing.
func (b *bench) reshardSection(title string) (string, error) {
	if !isShardproxy(b.o.proxyBin) {
		return fmt.Sprintf("### %s\n\nnot measured: %s is not shardproxy; only shardproxy migrates data (migrate_from)\n\n",
			title, b.o.proxyBin), nil
	}
	var runs []reshardRun
	for i, withLoad := range []bool{false, true} {
		r := b.reshardRun(i, reshardKeys(b.o.quick), withLoad)
		runs = append(runs, r)
		if r.err != nil {
			b.failures = append(b.failures, fmt.Sprintf("reshard %s: %v", r.label, r.err))
			b.progress("reshard %s: FAILED: %v", r.label, r.err)
			if err := b.ctx.Err(); err != nil {
				return renderReshard(title, runs), err
			}
			continue
		}
		b.progress("reshard %s: %d keys moved in %v", r.label, r.moved, r.took.Round(time.Millisecond))
	}
	return renderReshard(title, runs), nil
}

// isShardproxy reports whether bin says it is shardproxy.
func isShardproxy(bin string) bool {
	out, err := exec.Command(bin, "-V").Output()
	return err == nil && strings.HasPrefix(string(out), "This is shardproxy-")
}

// reshardRun measures one migration of keys keys on fresh servers and a
// fresh proxy: the run's number names their logs and configs.
func (b *bench) reshardRun(run, keys int, withLoad bool) reshardRun {
	r := reshardRun{label: "no client load", withLoad: withLoad, keys: keys}
	if withLoad {
		r.label = fmt.Sprintf("%d clients GET/SET", reshardClients)
	}
	fx, err := b.startReshardFixture(run)
	if err != nil {
		r.err = err
		return r
	}
	if r.err = fill(fx.listen, keys); r.err != nil {
		return r
	}
	before, err := fx.checkKeys(keys, reshardOld)
	if r.err = err; err != nil {
		return r
	}
	var load *clientLoad
	if withLoad {
		if load, r.err = startLoad(fx.listen, keys, reshardClients); r.err != nil {
			return r
		}
		warmup, baseline := loadPhases(b.o.quick)
		time.Sleep(warmup)
		load.next()
		time.Sleep(baseline)
		load.next()
	}
	r.counted, r.took, r.err = fx.migrate(b.ctx)
	if load != nil {
		var err error
		r.before, r.during, err = load.finish()
		r.err = errors.Join(r.err, err)
	}
	if r.err == nil {
		var after []int64
		after, r.err = fx.checkKeys(keys, reshardOld+1)
		r.moved = arrived(before, after)
	}
	if r.err != nil && !alive(fx.cmd.Process.Pid) {
		r.err = fmt.Errorf("%w; shardproxy exited:\n%s", r.err, tail(readFile(fx.log), 10))
	}
	return r
}

// reshardFixture is one run's redis-servers and the shardproxy in front
// of them.
type reshardFixture struct {
	ports  []int  // the old servers', then the new one's
	listen string // the pool's address
	stats  string // the stats port's address
	conf   string
	log    string
	cmd    *exec.Cmd
}

// startReshardFixture starts four redis-servers and a shardproxy whose pool
// holds the first three.
func (b *bench) startReshardFixture(run int) (*reshardFixture, error) {
	p := b.procs
	fx := &reshardFixture{}
	for i := range reshardOld + 1 {
		port, err := p.freePort()
		if err != nil {
			return nil, err
		}
		// Log names after the cluster's redis0..redis3.
		cmd, err := startRedis(p, 10*(run+1)+i, port)
		if err != nil {
			return nil, err
		}
		if err := waitListening(cmd, addrOf(port), 10*time.Second); err != nil {
			return nil, fmt.Errorf("reshard redis %d: %w", i, err)
		}
		fx.ports = append(fx.ports, port)
	}
	listen, err := p.freePort()
	if err != nil {
		return nil, err
	}
	stats, err := p.freePort()
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("reshard%d", run)
	fx.listen, fx.stats = addrOf(listen), addrOf(stats)
	fx.conf, fx.log = filepath.Join(p.dir, name+".yml"), filepath.Join(p.dir, name+".log")
	if err := writeFileAtomic(fx.conf, reshardConfig(fx.listen, fx.ports[:reshardOld], nil)); err != nil {
		return nil, err
	}
	args := append([]string{"-c", fx.conf, "-s", strconv.Itoa(stats), "-a", "127.0.0.1", "-o", fx.log}, b.o.proxyFlags...)
	if fx.cmd, err = p.start(name+".out", b.o.proxyBin, args...); err != nil {
		return nil, err
	}
	for _, a := range []string{fx.listen, fx.stats} {
		if err := waitListening(fx.cmd, a, 10*time.Second); err != nil {
			return nil, fmt.Errorf("reshard shardproxy: %w\n%s", err, tail(readFile(fx.log), 10))
		}
	}
	return fx, nil
}

// reshardConfig is the pool's YAML: servers a, b, c ... on ports, and
// with from, a migration from servers on those ports at reshardRate keys
// per second.
func reshardConfig(listen string, ports, from []int) string {
	lines := func(indent string, ports []int) string {
		var s strings.Builder
		for i, port := range ports {
			fmt.Fprintf(&s, "%s- 127.0.0.1:%d:1 %c\n", indent, port, 'a'+i)
		}
		return s.String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s:\n  listen: %s\n  redis: true\n", reshardPool, listen)
	b.WriteString("  hash: fnv1a_64\n  hash_tag: \"{}\"\n  distribution: jump\n")
	b.WriteString("  auto_eject_hosts: false\n  timeout: 10000\n  servers:\n")
	b.WriteString(lines("    ", ports))
	if len(from) > 0 {
		b.WriteString("  migrate_from:\n    servers:\n")
		b.WriteString(lines("      ", from))
		fmt.Fprintf(&b, "  migrate_rate: %d\n", reshardRate)
	}
	return b.String()
}

// writeFileAtomic replaces path by a file holding text, so that a reload
// never reads half of it.
func writeFileAtomic(path, text string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return nil
}

// readFile returns the file at path, or nothing if it cannot be read: for
// the tail of a log in an error.
func readFile(path string) []byte {
	b, _ := os.ReadFile(path)
	return b
}

// migrate rewrites the config onto all four servers with migrate_from the
// three old ones, reloads the proxy and waits for migration_pending 0. It
// returns the keys migrated meanwhile and the time from SIGUSR1 to the
// first stats that show the migration complete.
func (fx *reshardFixture) migrate(ctx context.Context) (int64, time.Duration, error) {
	before, err := fetchProxyStats(fx.stats)
	if err != nil {
		return 0, 0, err
	}
	if err := writeFileAtomic(fx.conf, reshardConfig(fx.listen, fx.ports, fx.ports[:reshardOld])); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	if err := fx.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return 0, 0, fmt.Errorf("reload shardproxy: %w", err)
	}
	applied := false
	for {
		s, err := fetchProxyStats(fx.stats)
		switch {
		case err != nil:
			return 0, 0, err
		case s.ReloadFailures > before.ReloadFailures:
			return 0, 0, fmt.Errorf("reload refused: %s", s.ReloadError)
		case s.Pool.Errors > before.Pool.Errors:
			return 0, 0, fmt.Errorf("migration_errors %d (see %s)", s.Pool.Errors-before.Pool.Errors, fx.log)
		case applied && s.Pool.Pending == 0:
			// Only stats read after those showing the reload: the pool's
			// and the reload's figures are not read at one instant.
			return s.Pool.Moved - before.Pool.Moved, time.Since(start), nil
		case ctx.Err() != nil:
			return 0, 0, ctx.Err()
		case time.Since(start) > reshardTimeout:
			return 0, 0, fmt.Errorf("migration_pending %d after %v (reloaded: %t)", s.Pool.Pending, reshardTimeout, applied)
		}
		applied = applied || s.Reloads > before.Reloads
		time.Sleep(pollEvery)
	}
}

// checkKeys checks that the first servers of the fixture hold want keys
// in all, and the others none, and returns each server's DBSIZE.
func (fx *reshardFixture) checkKeys(want, servers int) ([]int64, error) {
	var total int64
	var sizes []int64
	for i, port := range fx.ports {
		n, err := dbsize(addrOf(port))
		if err != nil {
			return nil, err
		}
		if i >= servers && n != 0 {
			return nil, fmt.Errorf("server %c holds %d keys, want none yet", 'a'+i, n)
		}
		total += n
		sizes = append(sizes, n)
	}
	if total != int64(want) {
		return nil, fmt.Errorf("servers hold %d keys (DBSIZE %v), want %d", total, sizes, want)
	}
	return sizes, nil
}

// arrived is the number of keys the servers gained from before to after:
// the keys moved when, as here, keys only move onto the new server (jump's
// default slot table gives an appended server its slots from the others
// and moves none between them), else a lower bound.
func arrived(before, after []int64) int64 {
	var n int64
	for i := range after {
		if i < len(before) && after[i] > before[i] {
			n += after[i] - before[i]
		}
	}
	return n
}

// fetchProxyStats reads the stats port at addr.
func fetchProxyStats(addr string) (proxyStats, error) {
	b, err := stats.Read(addr, 5*time.Second)
	if err != nil {
		return proxyStats{}, fmt.Errorf("stats: %w", err)
	}
	return parseProxyStats(b)
}

// proxyStats is a stats document and the section's pool's counters in it.
type proxyStats struct {
	*stats.Document
	Pool stats.Migration
}

// parseProxyStats decodes a stats document; it fails when the pool has no
// migration counters.
func parseProxyStats(b []byte) (proxyStats, error) {
	doc, err := stats.Parse(b)
	if err != nil {
		return proxyStats{}, fmt.Errorf("stats: %w", err)
	}
	pool, ok := doc.Pools[reshardPool]
	if !ok {
		return proxyStats{}, fmt.Errorf("stats: pool %q has no migration_pending", reshardPool)
	}
	return proxyStats{doc, pool}, nil
}

// appendCommand appends a RESP array of bulk strings: args, then key:k
// when k >= 0, then val when non-nil.
func appendCommand(buf []byte, k int, val []byte, args ...string) []byte {
	n := len(args)
	if k >= 0 {
		n++
	}
	if val != nil {
		n++
	}
	buf = resp.AppendArray(buf, n)
	for _, a := range args {
		buf = resp.AppendBulkString(buf, a)
	}
	if k >= 0 {
		var key [24]byte
		buf = resp.AppendBulk(buf, strconv.AppendInt(append(key[:0], "key:"...), int64(k), 10))
	}
	if val != nil {
		buf = resp.AppendBulk(buf, val)
	}
	return buf
}

// maxReply bounds one reply the section reads.
const maxReply = 1 << 20

// newReader returns a reader of the replies on c.
func newReader(c net.Conn) *resp.Reader { return resp.NewReader(c, maxReply) }

// showReply formats a reply for an error message: its type byte and text.
func showReply(v resp.Value) string {
	if v.Kind == resp.KindInteger {
		return string(resp.AppendInt(nil, v.Int))
	}
	return fmt.Sprintf("%c%s", byte(v.Kind), v.Str)
}

// dbsize asks the Redis server at addr for its number of keys.
func dbsize(addr string) (int64, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, fmt.Errorf("DBSIZE: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(appendCommand(nil, -1, nil, "DBSIZE")); err != nil {
		return 0, fmt.Errorf("DBSIZE %s: %w", addr, err)
	}
	v, err := newReader(c).ReadValue()
	n, ok := v.Integer()
	if err != nil || !ok {
		return 0, fmt.Errorf("DBSIZE %s: reply %q, %v", addr, showReply(v), err)
	}
	return n, nil
}

// fill writes keys key:0 ... key:n-1 through the proxy at addr with
// pipelined SETs on fillConns connections.
func fill(addr string, n int) error {
	errs := make([]error, fillConns)
	var wg sync.WaitGroup
	for w := range fillConns {
		wg.Go(func() { errs[w] = fillRange(addr, w*n/fillConns, (w+1)*n/fillConns) })
	}
	wg.Wait()
	return firstError("fill", errs)
}

// fillRange writes the keys from lo to hi (exclusive) on one connection.
func fillRange(addr string, lo, hi int) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	r := newReader(c)
	var buf []byte
	for k := lo; k < hi; k += fillBatch {
		buf = buf[:0]
		end := min(k+fillBatch, hi)
		for i := k; i < end; i++ {
			buf = appendCommand(buf, i, reshardValueBytes, "SET")
		}
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Write(buf); err != nil {
			return err
		}
		for i := k; i < end; i++ {
			if v, err := r.ReadValue(); err != nil || v.Kind != resp.KindSimple {
				return fmt.Errorf("SET key:%d: reply %q, %v", i, showReply(v), err)
			}
		}
	}
	return nil
}

// The phases of the client load; a request counts in the phase it began in.
const (
	phaseWarmup = iota // not measured
	phaseBefore        // measured, no migration
	phaseDuring        // measured, the migration running
	numPhases
)

// clientLoad is a closed-loop load of GETs and SETs (half each) on random
// keys of the pool, one request in flight per connection, every request
// timed.
type clientLoad struct {
	phase   atomic.Int32
	stop    atomic.Bool
	began   [numPhases + 1]time.Time // when each phase began; the last: when the load stopped
	wg      sync.WaitGroup
	workers []*loadWorker
}

// loadWorker is one connection of the load.
type loadWorker struct {
	lat      [numPhases][]time.Duration
	errs     int64  // error and unexpected replies
	misses   int64  // GETs answered nil or with a wrong value size: every key exists throughout
	firstErr string // the first error reply
	err      error  // what ended the connection early
}

// loadResult is the load's figures in one phase.
type loadResult struct {
	ops      int64
	rps      float64
	p50, p99 float64 // milliseconds
}

// startLoad connects clients connections to addr and starts the load on
// keys key:0 ... key:keys-1, in phaseWarmup.
func startLoad(addr string, keys, clients int) (*clientLoad, error) {
	l := &clientLoad{}
	conns := make([]net.Conn, clients)
	for i := range conns {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			closeAll(conns)
			return nil, fmt.Errorf("client load: %w", err)
		}
		conns[i] = c
	}
	l.began[phaseWarmup] = time.Now()
	for i, c := range conns {
		w := &loadWorker{}
		l.workers = append(l.workers, w)
		l.wg.Go(func() { w.run(c, keys, uint64(i), l) })
	}
	return l, nil
}

// next moves the load on to its next phase.
func (l *clientLoad) next() {
	ph := l.phase.Load() + 1
	l.began[ph] = time.Now()
	l.phase.Store(ph)
}

// finish stops the load and returns its figures before and during the
// migration; it fails if a connection failed or a reply was wrong.
func (l *clientLoad) finish() (before, during loadResult, err error) {
	l.stop.Store(true)
	l.began[numPhases] = time.Now()
	l.wg.Wait()
	var errs []error
	var lat [numPhases][]time.Duration
	for i, w := range l.workers {
		if w.err != nil {
			errs = append(errs, fmt.Errorf("client load connection %d: %w", i, w.err))
		}
		if w.errs > 0 {
			errs = append(errs, fmt.Errorf("client load connection %d: %d error replies, first %q", i, w.errs, w.firstErr))
		}
		if w.misses > 0 {
			errs = append(errs, fmt.Errorf("client load connection %d: %d GETs without the key's value", i, w.misses))
		}
		for ph := range lat {
			lat[ph] = append(lat[ph], w.lat[ph]...)
		}
	}
	return summarize(lat[phaseBefore], l.began[phaseDuring].Sub(l.began[phaseBefore])),
		summarize(lat[phaseDuring], l.began[numPhases].Sub(l.began[phaseDuring])), errors.Join(errs...)
}

// run sends requests until the load stops.
func (w *loadWorker) run(c net.Conn, keys int, seed uint64, l *clientLoad) {
	defer c.Close()
	rng := rand.New(rand.NewPCG(seed, 0x5e7))
	r := newReader(c)
	var buf []byte
	for !l.stop.Load() {
		k, set := rng.IntN(keys), rng.IntN(2) == 0
		if set {
			buf = appendCommand(buf[:0], k, reshardValueBytes, "SET")
		} else {
			buf = appendCommand(buf[:0], k, nil, "GET")
		}
		ph := l.phase.Load()
		began := time.Now()
		_ = c.SetDeadline(began.Add(10 * time.Second))
		if _, err := c.Write(buf); err != nil {
			w.err = err
			return
		}
		v, err := r.ReadValue()
		if err != nil {
			w.err = err
			return
		}
		w.lat[ph] = append(w.lat[ph], time.Since(began))
		switch {
		case v.IsError() || (set && v.Kind != resp.KindSimple) || (!set && v.Kind != resp.KindBulk):
			w.errs++
			if w.firstErr == "" {
				w.firstErr = showReply(v)
			}
		case !set && len(v.Str) != reshardValue:
			w.misses++
		}
	}
}

// summarize gives the request count, rate and latency percentiles of the
// requests of one phase that lasted d.
func summarize(lat []time.Duration, d time.Duration) loadResult {
	slices.Sort(lat)
	r := loadResult{ops: int64(len(lat)), p50: percentile(lat, 0.50), p99: percentile(lat, 0.99)}
	if d > 0 {
		r.rps = float64(len(lat)) / d.Seconds()
	}
	return r
}

// percentile returns the q-quantile of sorted latencies by nearest rank,
// in milliseconds; 0 for none.
func percentile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(max(int(math.Ceil(q*float64(len(sorted))))-1, 0), len(sorted)-1)
	return float64(sorted[i]) / float64(time.Millisecond)
}

var reshardHeader = []string{"run", "keys", "keys moved", "keys_migrated", "seconds", "keys/s", "client ops/s",
	"client p50 ms", "client p99 ms", "ops/s without migration", "p99 ms without migration", "p99 ratio"}

// renderReshard formats the runs as a Markdown table and says how they
// were measured.
func renderReshard(title string, runs []reshardRun) string {
	var lines [][]string
	for _, r := range runs {
		l := []string{r.label, strconv.Itoa(r.keys), "ERR", "ERR", "ERR", "ERR", "-", "-", "-", "-", "-", "-"}
		if r.err == nil {
			l[2], l[3] = strconv.FormatInt(r.moved, 10), strconv.FormatInt(r.counted, 10)
			l[4], l[5] = fmt.Sprintf("%.2f", r.took.Seconds()), fmt.Sprintf("%.0f", float64(r.moved)/r.took.Seconds())
		}
		if r.err == nil && r.withLoad {
			d, b := r.during, r.before
			l[6], l[7], l[8] = fmt.Sprintf("%.0f", d.rps), fmt.Sprintf("%.3f", d.p50), fmt.Sprintf("%.3f", d.p99)
			l[9], l[10], l[11] = fmt.Sprintf("%.0f", b.rps), fmt.Sprintf("%.3f", b.p99), ratio(d.p99, b.p99, d.ops > 0 && b.ops > 0)
		}
		lines = append(lines, l)
	}
	return markdown(title, reshardHeader, lines) + fmt.Sprintf("Each run starts %d fresh redis-servers and a shardproxy "+
		"whose pool (distribution jump) holds the first %d, writes the keys (%d-byte values) through it, then "+
		"rewrites its config onto all %d with migrate_from the %d old ones and migrate_rate %d (the default is %d), and "+
		"reloads it (SIGUSR1). seconds: from SIGUSR1 until the stats show migration_pending 0; keys moved: the keys the "+
		"servers gained (DBSIZE after minus before, summed over the servers that grew); keys/s: keys moved / seconds; "+
		"keys_migrated: the proxy's count meanwhile (the keys of MIGRATEs answered OK: the mover's and the clients' "+
		"on-access ones, so a key can count twice). Each run ends with the servers' DBSIZE summing to the keys and "+
		"migration_errors 0. Client load: %d connections, one request in flight each, GET or SET of a random key (every "+
		"GET must return the value); without migration: the same load on the same proxy just before the reload; "+
		"p99 ratio: during / without.\n\n", reshardOld+1, reshardOld, reshardValue, reshardOld+1, reshardOld,
		reshardRate, config.DefaultMigrateRate, reshardClients)
}
