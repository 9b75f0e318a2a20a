package proxy

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/pools"
	"github.com/shardproxy/shardproxy/sentinel"
)

// With replica_reads, the read-only commands of a shard (command.readonly)
// go to its replicas, as the Sentinels list them, spread by client, when
// one is up; else to its primary. A replica lags its primary, so a read
// there may miss a write just acknowledged, even one of the same client
// (the README says so). Reads never go to a replica during a migration:
// the new owner's replica may not have a moved key yet.
//
// A replica is up (pools.Server.Up) only once a connection to it or a
// check of it succeeded: each connection's handshake asks ROLE, which
// must say slave with its link to its primary connected (verifyReplica),
// so a replica loading its dataset, one whose link is down, and one
// detached from its primary (ROLE says master) get no reads. The pool's
// prober checks every replica each second (probe.go), which catches those
// that change while connected. A read a replica does not serve (its call
// failed, or it refused: -LOADING, -MASTERDOWN, -BUSY) marks it down and is
// sent to the primary before the client is answered (retryOnPrimary).

// replicaRefresh is how often the replicas are asked for again.
const replicaRefresh = 2 * time.Second

// replicaKeeper keeps the replica servers of each master of a pool with
// replica_reads, from the Sentinels' lists.
type replicaKeeper struct {
	p    *pool
	w    *sentinel.Watcher
	kick chan struct{} // asks for a refresh now (a failover)
	stop chan struct{}
	done chan struct{}
}

// replicaFor returns the server the reads of client id for primary's keys
// go to: one of its replicas, spread by client, skipping those not up;
// nil when the pool has none up.
func (p *pool) replicaFor(primary *pools.Server, id uint64) *pools.Server {
	rs := p.replicaServers(primary.Name())
	for j := range rs {
		if r := rs[(id+uint64(j))%uint64(len(rs))]; r.Up() {
			return r
		}
	}
	return nil
}

// replicaServers returns the replica servers of master, in address order.
func (p *pool) replicaServers(master string) []*pools.Server {
	v, ok := p.replicas.Load(master)
	if !ok {
		return nil
	}
	return v.([]*pools.Server)
}

// readServer returns the server a request of client id and cmd for ring
// index i goes to: a replica of its primary for a read-only command when
// the pool reads from replicas, else the primary. primary is the primary
// when srv is a replica, else nil.
func (p *pool) readServer(rt *routing, cmd *command, i int, id uint64) (srv, primary *pools.Server) {
	srv = rt.ring[i]
	if cmd.readonly && rt.replicaReads {
		if r := p.replicaFor(srv, id); r != nil {
			return r, srv
		}
	}
	return srv, nil
}

// replicaRead is a call of a batch sent to a replica, and the primary it
// goes to if the replica does not serve it.
type replicaRead struct {
	call    int // index in batch.calls
	primary *pools.Server
}

// viaReplica records that the call just sent went to a replica of
// primary; a nil primary records nothing.
func (bt *batch) viaReplica(primary *pools.Server) {
	if primary != nil {
		bt.replicaReads = append(bt.replicaReads, replicaRead{call: bt.ncalls - 1, primary: primary})
	}
}

// retryOnPrimary sends each read of the batch that a replica did not serve
// (its call failed, or the replica refused it) to its primary, on the
// client's connection there. It reports whether it sent any: the client
// then waits for them too before it writes the batch's replies, which so
// keep their order. Only read-only commands go to replicas, so running one
// twice changes nothing.
func (cl *client) retryOnPrimary(bt *batch) bool {
	sent := false
	for _, rr := range bt.replicaReads {
		c := bt.calls[rr.call]
		if c.Err == nil && !replicaRefuses(c.Reply) {
			continue
		}
		if !sent {
			clear(bt.conns)
			bt.conns = bt.conns[:0]
			sent = true
		}
		frame, kind := c.Frame, c.Kind
		c.Reset(64 << 10)
		c.Frame, c.Kind, c.Done = frame, kind, cl
		conn := rr.primary.Conn(cl.id)
		cl.pending.Add(1)
		conn.Enqueue(c)
		bt.addConn(conn)
	}
	return sent
}

// replicaRefusals are the starts of the error replies by which a replica
// refuses a read it would serve once usable again: loading its dataset,
// its link to its primary down with replica-serve-stale-data no, a script
// running too long.
var replicaRefusals = [][]byte{[]byte("-LOADING"), []byte("-MASTERDOWN"), []byte("-BUSY ")}

// replicaRefuses tells a reply by which a replica refuses a read.
func replicaRefuses(reply []byte) bool {
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

var (
	roleReplica         = []byte("slave")
	roleLinkUp          = []byte("connected")
	errNotAReplica      = errors.New("ROLE does not say slave: not a replica (detached from its primary?)")
	errReplicaNotSynced = errors.New("ROLE says the replica's link to its primary is not connected")
)

// verifyReplica checks a connection's reply to ROLE: only a replica whose
// link to its primary is connected (so done loading, and replicating)
// gets reads.
func verifyReplica(reply []byte) error {
	count, off, err := resp.ReadArrayHeader(reply)
	if err != nil || count < 4 {
		return fmt.Errorf("%w: %q", errRoleNotArray, clip(reply))
	}
	var fields [4][]byte
	for i := range fields {
		if i == 2 { // the primary's port, an integer
			_, n, err := resp.ReadInteger(reply[off:])
			if err != nil || n == 0 {
				return fmt.Errorf("%w: %q", errRoleNotArray, clip(reply))
			}
			off += n
			continue
		}
		v, n, err := resp.ReadBulkString(reply[off:])
		if err != nil || n == 0 {
			if i == 0 {
				return errNotAReplica // a primary's second field is an integer
			}
			return fmt.Errorf("%w: %q", errRoleNotArray, clip(reply))
		}
		fields[i], off = v, off+n
		if i == 0 && !bytes.Equal(v, roleReplica) {
			return errNotAReplica
		}
	}
	if !bytes.Equal(fields[3], roleLinkUp) {
		return fmt.Errorf("%w (%s)", errReplicaNotSynced, fields[3])
	}
	return nil
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
// over them by client. A new one is checked at once; the pool's prober
// checks them all again each second. A replica no longer listed is
// retired once its requests are answered. A master whose list cannot be
// had keeps its replicas.
func (k *replicaKeeper) refresh() {
	p := k.p
	cfg := p.routing().cfg
	roots, err := serverRoots(cfg)
	if err != nil {
		return
	}
	for _, line := range cfg.Servers {
		ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
		addrs, err := k.w.Replicas(ctx, line.Ident)
		cancel()
		if err != nil {
			continue
		}
		primary := p.primaryAddr(cfg, line)
		addrs = slices.DeleteFunc(addrs, func(a string) bool { return a == primary })
		slices.Sort(addrs)
		cur := p.replicaServers(line.Ident)
		next := make([]*pools.Server, 0, len(addrs))
		for _, a := range addrs {
			i := slices.IndexFunc(cur, func(s *pools.Server) bool { return s.Addr() == a })
			if i < 0 {
				s := pools.NewServer(p.replicaOptions(cfg, line, a, roots))
				s.Probe() // reads go to it once it passes (the prober checks it again)
				next = append(next, s)
				continue
			}
			next = append(next, cur[i])
		}
		if slices.Equal(next, cur) {
			continue
		}
		if len(next) == 0 {
			p.replicas.Delete(line.Ident)
		} else {
			p.replicas.Store(line.Ident, next)
		}
		p.log.Info("replica reads: replicas", "server", line.Ident, "replicas", addrs)
		for _, s := range cur {
			if !slices.Contains(next, s) {
				p.retire(s)
			}
		}
	}
}

// replicaOptions are the options of the replica server of line at addr:
// the line's, with the ROLE check of a replica instead of a primary's
// questions, down at a refusal, and never ejected (a replica not up is
// skipped, see replicaFor).
func (p *pool) replicaOptions(cfg *config.Pool, line config.Server, addr string, roots *x509.CertPool) pools.Options {
	opt := p.baseServerOptions(cfg, line, roots)
	opt.Addr, opt.AutoEject, opt.FailFast = addr, false, false
	opt.Handshake, opt.Verify = withRole(opt.Handshake), verifyReplica
	opt.Refuses = replicaRefuses
	return opt
}

// startReplicas starts the keeper of the pool's replicas for watcher w.
func (p *pool) startReplicas(w *sentinel.Watcher) *replicaKeeper {
	k := &replicaKeeper{p: p, w: w, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go k.run()
	return k
}

// halt stops the keeper and closes the replica servers it kept.
func (k *replicaKeeper) halt() {
	close(k.stop)
	<-k.done
	k.p.replicas.Range(func(name, v any) bool {
		k.p.replicas.Delete(name)
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

// retire closes a replica server no longer used once what it was asked
// is answered.
func (p *pool) retire(s *pools.Server) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.drainServer(s)
	}()
}
