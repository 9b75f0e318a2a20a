package failover

import (
	"bytes"
	"context"
	"slices"
	"time"

	"github.com/shardproxy/shardproxy/pools"
	"github.com/shardproxy/shardproxy/sentinel"
)

// With replica_reads, the read-only commands of a shard go to its
// replicas, as the Sentinels list them, spread by client, when one is up;
// else to its primary. A replica lags its primary, so a read there may
// miss a write just acknowledged, even one of the same client (the README
// says so). The proxy never sends reads to a replica during a migration:
// the new owner's replica may not have a moved key yet.
//
// A replica is up (pools.Server.Up) only once a connection to it or a
// check of it succeeded: each connection's handshake asks ROLE, which
// must say slave with its link to its primary connected (verifyReplica),
// so a replica loading its dataset, one whose link is down, and one
// detached from its primary (ROLE says master) get no reads. The pool
// checks every replica each second (EachReplica), which catches those
// that change while connected. A read a replica does not serve (its call
// failed, or it refused: Refuses) marks it down, and the proxy sends it to
// the primary before the client is answered.

// replicaRefresh is how often the replicas are asked for again.
const replicaRefresh = 2 * time.Second

// replicaKeeper keeps the replica servers of each master, from the
// Sentinels' lists.
type replicaKeeper struct {
	f       *Follower
	w       *sentinel.Watcher
	masters []string
	kick    chan struct{} // asks for a refresh now (a failover)
	stop    chan struct{}
	done    chan struct{}
}

// Replica returns the server the reads of client id for primary's keys
// go to: one of its replicas, spread by client, skipping those not up;
// nil when none is up.
func (f *Follower) Replica(primary *pools.Server, id uint64) *pools.Server {
	rs := f.Replicas(primary.Name())
	for j := range rs {
		if r := rs[(id+uint64(j))%uint64(len(rs))]; r.Up() {
			return r
		}
	}
	return nil
}

// Replicas returns the replica servers of master, in address order.
func (f *Follower) Replicas(master string) []*pools.Server {
	v, ok := f.replicas.Load(master)
	if !ok {
		return nil
	}
	return v.([]*pools.Server)
}

// EachReplica calls fn with every replica server kept.
func (f *Follower) EachReplica(fn func(*pools.Server)) {
	f.replicas.Range(func(_, v any) bool {
		for _, r := range v.([]*pools.Server) {
			fn(r)
		}
		return true
	})
}

// replicaRefusals are the starts of the error replies by which a replica
// refuses a read it would serve once usable again: loading its dataset,
// its link to its primary down with replica-serve-stale-data no, a script
// running too long.
var replicaRefusals = [][]byte{[]byte("-LOADING"), []byte("-MASTERDOWN"), []byte("-BUSY ")}

// Refuses tells a reply by which a replica refuses a read: the read goes
// to the primary instead.
func Refuses(reply []byte) bool {
	if len(reply) == 0 || reply[0] != '-' {
		return false
	}
	for _, r := range replicaRefusals {
		if bytes.HasPrefix(reply, r) {
			return true
		}
	}
	return false
}

// startReplicas starts the keeper of the replicas of masters for watcher
// w. Called with f.mu held.
func (f *Follower) startReplicas(w *sentinel.Watcher, masters []string) *replicaKeeper {
	k := &replicaKeeper{f: f, w: w, masters: masters, kick: make(chan struct{}, 1), stop: make(chan struct{}),
		done: make(chan struct{})}
	go k.run()
	return k
}

func (k *replicaKeeper) run() {
	defer close(k.done)
	t := time.NewTicker(replicaRefresh)
	defer t.Stop()
	for {
		k.refresh()
		select {
		case <-k.stop:
			return
		case <-t.C:
		case <-k.kick:
		}
	}
}

// refresh asks the Sentinels for each master's replicas and keeps a server
// for each listed (but the primary), in address order: reads are spread
// over them by client. A new one is checked at once. A replica no longer
// listed is retired once its requests are answered. A master whose list
// cannot be had keeps its replicas.
func (k *replicaKeeper) refresh() {
	f := k.f
	for _, master := range k.masters {
		ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
		addrs, err := k.w.Replicas(ctx, master)
		cancel()
		if err != nil {
			continue
		}
		primary := ""
		if ss := f.pool.Servers(master); len(ss) > 0 {
			primary = ss[0].Addr()
		}
		addrs = slices.DeleteFunc(addrs, func(a string) bool { return a == primary })
		slices.Sort(addrs)
		cur := f.Replicas(master)
		next := make([]*pools.Server, 0, len(addrs))
		for _, a := range addrs {
			if i := slices.IndexFunc(cur, func(s *pools.Server) bool { return s.Addr() == a }); i >= 0 {
				next = append(next, cur[i])
				continue
			}
			opt, err := f.replicaOptions(master, a)
			if err != nil {
				continue
			}
			s := pools.NewServer(opt)
			s.Probe() // reads go to it once it passes (the pool checks it again)
			next = append(next, s)
		}
		if slices.Equal(next, cur) {
			continue
		}
		if len(next) == 0 {
			f.replicas.Delete(master)
		} else {
			f.replicas.Store(master, next)
		}
		f.log.Info("replica reads: replicas", "server", master, "replicas", addrs)
		for _, s := range cur {
			if !slices.Contains(next, s) {
				f.pool.Retire(s)
			}
		}
	}
}

// replicaOptions are the options of the replica server of master at addr:
// the line's, with the ROLE check of a replica instead of a primary's
// questions, down at a refusal, and never ejected (a replica not up is
// skipped, see Replica).
func (f *Follower) replicaOptions(master, addr string) (pools.Options, error) {
	opt, err := f.pool.Options(master, addr)
	if err != nil {
		return opt, err
	}
	opt.Addr, opt.AutoEject, opt.FailFast = addr, false, false
	opt.Handshake, opt.Verify = withRole(opt.Handshake), verifyReplica
	opt.Refuses = Refuses
	return opt, nil
}

// halt stops the keeper and closes the replica servers it kept.
func (k *replicaKeeper) halt() {
	close(k.stop)
	<-k.done
	k.f.replicas.Range(func(name, v any) bool {
		k.f.replicas.Delete(name)
		for _, s := range v.([]*pools.Server) {
			s.Close()
		}
		return true
	})
}

// refreshSoon asks the keeper for a refresh now: after a failover the
// old primary may be listed as a replica, the new one no longer.
func (k *replicaKeeper) refreshSoon() {
	select {
	case k.kick <- struct{}{}:
	default:
	}
}
