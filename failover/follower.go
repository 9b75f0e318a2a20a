package failover

import (
	"context"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/pools"
	"github.com/shardproxy/shardproxy/sentinel"
)

// Pool is what a Follower needs of the pool whose shards it follows. Its
// methods are called without any lock of the Follower held.
type Pool interface {
	// Servers returns every server of master in use now: the pool's, and
	// any other connections to the shard's primary (a migration's own).
	Servers(master string) []*pools.Server
	// Options returns the options of a connection to a server of
	// master's line at addr, as the pool dials its servers (TLS, AUTH,
	// SELECT), without the checks of a primary: the Follower adds the
	// checks it needs.
	Options(master, addr string) (pools.Options, error)
	// Retire closes a server no longer used once its requests are
	// answered.
	Retire(s *pools.Server)
}

// resolveTimeout bounds the questions to the Sentinels at start (or for a
// reload), for all masters together: Sentinels that do not answer must
// not hold a start or a reload for long.
const resolveTimeout = 2 * time.Second

// Follower follows the shards of one pool. Its methods may be called from
// any goroutine.
//
// Lock order: mu is never held while a method of Pool, the watcher or the
// keeper is called, nor while a pools.Server is moved.
type Follower struct {
	pool Pool
	log  *slog.Logger
	done chan struct{} // closed by Close
	wg   sync.WaitGroup

	mu sync.Mutex
	// primaries is the primary per master name that its servers are
	// dialled at; outcome the masters held while their failover's
	// outcome is awaited (closed when it is known); probing the masters
	// whose promotion is awaited.
	primaries map[string]string
	outcome   map[string]chan struct{}
	probing   map[string]bool
	// watcher follows the Sentinels (nil without), with what it follows;
	// keeper keeps the replicas with replica_reads.
	watcher   *sentinel.Watcher
	following config.Sentinel
	masters   []string
	keeper    *replicaKeeper
	closed    bool

	// replicas are the replica servers per master name
	// ([]*pools.Server), read per request: a sync.Map, not under mu.
	replicas sync.Map
}

// New returns a Follower of pool's shards; it follows nothing until
// Follow.
func New(pool Pool, log *slog.Logger) *Follower {
	return &Follower{
		pool:      pool,
		log:       log,
		done:      make(chan struct{}),
		primaries: map[string]string{},
		outcome:   map[string]chan struct{}{},
		probing:   map[string]bool{},
	}
}

// watcherOptions are the options of a Sentinel watcher of masters
// through the Sentinels of sc.
func (f *Follower) watcherOptions(sc config.Sentinel, masters []string) sentinel.Options {
	return sentinel.Options{
		Addrs:       sc.Addrs,
		Username:    sc.Username,
		Password:    sc.Password,
		Masters:     masters,
		OnSwitch:    f.primaryReported,
		OnPromoting: f.promoting,
		OnAborted:   f.outcomeKnown,
		CheckPrimary: func(_ context.Context, master, addr string) error {
			return f.probePrimary(master, addr)
		},
		Logger: f.log,
	}
}

// Resolve asks the Sentinels of sc for the primary of each of masters not
// known yet, and keeps the answers (PrimaryAddr). A master no Sentinel
// answers for keeps its line's address, with a warning. It waits for the
// Sentinels, resolveTimeout at most: call it where I/O belongs (a start, a
// reload's preparation), never from New or a check.
func (f *Follower) Resolve(sc config.Sentinel, lines []config.Server) {
	if !sc.Enabled() {
		return
	}
	var masters []string
	for _, s := range lines {
		masters = append(masters, s.Ident)
	}
	w := sentinel.New(f.watcherOptions(sc, masters))
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	for _, s := range lines {
		f.mu.Lock()
		_, known := f.primaries[s.Ident]
		f.mu.Unlock()
		if known {
			continue
		}
		addr, err := w.Resolve(ctx, s.Ident)
		if err != nil {
			f.log.Warn("sentinel: no primary reported: using the server line's address until one is",
				"master", s.Ident, "addr", s.Addr, "err", err)
			continue
		}
		f.mu.Lock()
		f.primaries[s.Ident] = addr
		f.mu.Unlock()
		if addr != s.Addr {
			f.log.Info("sentinel: primary", "master", s.Ident, "addr", addr, "line", s.Addr)
		}
	}
}

// PrimaryAddr returns the address master's servers are dialled at: its
// primary as last reported, else line, the server line's address.
func (f *Follower) PrimaryAddr(master, line string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if addr, ok := f.primaries[master]; ok {
		return addr
	}
	return line
}

// Follow follows masters through the Sentinels of sc, replacing a watcher
// that follows other Sentinels or masters; with sc's replica_reads it
// keeps their replicas too. Without Sentinels it stops following.
func (f *Follower) Follow(sc config.Sentinel, masters []string) {
	f.mu.Lock()
	if f.watcher != nil && reflect.DeepEqual(f.following, sc) && reflect.DeepEqual(f.masters, masters) {
		f.mu.Unlock()
		return
	}
	old, oldKeeper := f.watcher, f.keeper
	f.watcher, f.keeper = nil, nil
	if sc.Enabled() && !f.closed {
		f.watcher = sentinel.New(f.watcherOptions(sc, masters))
		f.following, f.masters = sc, masters
		f.watcher.Start()
		if sc.ReplicaReads {
			f.keeper = f.startReplicas(f.watcher, masters)
		}
	}
	f.mu.Unlock()
	if oldKeeper != nil {
		oldKeeper.halt()
	}
	if old != nil {
		old.Close()
	}
}

// Close stops following and waits for the Follower's goroutines; a held
// shard is released.
func (f *Follower) Close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	close(f.done)
	w, k := f.watcher, f.keeper
	f.watcher, f.keeper = nil, nil
	f.mu.Unlock()
	if k != nil {
		k.halt()
	}
	if w != nil {
		w.Close()
	}
	f.wg.Wait()
}

// SentinelsUp returns how many of the Sentinels the Follower is
// subscribed to now, and how many there are.
func (f *Follower) SentinelsUp() (up, all int) {
	f.mu.Lock()
	w := f.watcher
	f.mu.Unlock()
	if w == nil {
		return 0, 0
	}
	for _, ok := range w.Status() {
		all++
		if ok {
			up++
		}
	}
	return up, all
}

// requery asks the Sentinels where master's primary is, after a failed
// connection or a -READONLY reply.
func (f *Follower) requery(master string) {
	f.mu.Lock()
	w := f.watcher
	f.mu.Unlock()
	if w != nil {
		w.Requery(master)
	}
}

// primaryReported is the watcher's OnSwitch: the Sentinels report addr as
// master's primary. It ends a hold of master (promoting).
func (f *Follower) primaryReported(master, addr string) {
	f.primaryMoved(master, addr)
	f.outcomeKnown(master)
}

// outcomeKnown wakes the hold of master, if one waits: the Sentinels
// reported its primary, or the failover was aborted (the watcher's
// OnAborted) and its primary stays where they reported it.
func (f *Follower) outcomeKnown(master string) {
	f.mu.Lock()
	if ch := f.outcome[master]; ch != nil {
		close(ch)
		delete(f.outcome, master)
	}
	f.mu.Unlock()
}

// primaryMoved moves the servers of master to addr, its primary now.
func (f *Follower) primaryMoved(master, addr string) {
	f.mu.Lock()
	f.primaries[master] = addr
	f.mu.Unlock()
	moved := false
	for _, s := range f.pool.Servers(master) {
		from := s.Addr()
		if s.SetAddr(addr) {
			moved = true
			f.log.Warn("failover: the shard's primary moved", "server", master, "from", from, "to", addr,
				"failovers", s.Stats.Failovers.Load())
		}
	}
	if !moved {
		return
	}
	f.mu.Lock()
	k := f.keeper
	f.mu.Unlock()
	if k != nil {
		k.refreshSoon()
	}
}
