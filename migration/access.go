package migration

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/pools"
)

// moveGroup is keys moving from one old owner to one new owner: one
// MIGRATE.
type moveGroup struct {
	from, to *pools.Server
	keys     [][]byte
}

// Access moves each of a request's keys whose owner changed in m from its
// old owner to its new one (both told by place, the routing the request
// is served by), before the request is forwarded: one MIGRATE per old and
// new owner, one after the other, while requests for a key another
// client is moving wait for that one. The moves run in a goroutine of
// their own (Pool.Go), on the migration's connections (moveConns); the
// client waits for them at most the pool's timeout, and a move it stops
// waiting for goes on.
// It returns "" when the keys may be served, else what failed ("key 'k'
// from a to b: cause"): a move failed or is still going on, the request
// is then answered with the error, and the key stays on its old owner.
func (mv *Mover) Access(m *State, place Placement, keys [][]byte) (failed string) {
	if m.complete.Load() {
		return ""
	}
	var groups []*moveGroup
	var waits []*keyMove
	var waitKeys [][]byte
	m.mu.Lock()
	for _, k := range keys {
		before, now := place.Owners(k)
		if before == nil || now == nil || before == now {
			continue
		}
		km, ok := m.inflight[string(k)]
		if !ok {
			km = &keyMove{done: make(chan struct{})}
			m.inflight[string(k)] = km
			g := findGroup(&groups, before, now)
			// A copy: the move may outlive the client's buffer.
			g.keys = append(g.keys, bytes.Clone(k))
		}
		waits, waitKeys = append(waits, km), append(waitKeys, k)
	}
	m.mu.Unlock()
	if len(groups) > 0 {
		// The pool's close waits for this one too.
		mv.pool.Go(func() {
			for _, g := range groups {
				// One at a time: this goroutine holds no lane while it waits.
				m.moveFollowing(mv, &m.conns, g, false, func(part *moveGroup, err error) {
					m.release(part.keys, moveError(part.from, part.to, err))
				})
			}
		})
	}
	return waitMoves(waits, waitKeys, m.cfg.Timeout)
}

// waitMoves waits for the moves of keys, at most timeout when it is not 0,
// and returns what failed ("key 'k' from a to b: cause"), or "".
func waitMoves(waits []*keyMove, keys [][]byte, timeout time.Duration) string {
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	for j, km := range waits {
		select {
		case <-km.done:
		case <-expired:
			return fmt.Sprintf("key '%s': not moved within the pool's timeout (%v); the move goes on", resp.Clip(keys[j]), timeout)
		}
		if km.err != nil {
			return fmt.Sprintf("key '%s' %v", resp.Clip(keys[j]), km.err)
		}
	}
	return ""
}

// findGroup returns the group of keys moving from one server to another,
// adding it to groups when new.
func findGroup(groups *[]*moveGroup, from, to *pools.Server) *moveGroup {
	for _, g := range *groups {
		if g.from == from && g.to == to {
			return g
		}
	}
	g := &moveGroup{from: from, to: to}
	*groups = append(*groups, g)
	return g
}

// migrate sends a MIGRATE of keys from one server to another on conn, a
// connection to from, once acquire lets it, and waits for its answer. It
// returns the call and how many of the keys the source held just before
// (present): for several keys, an EXISTS of them goes in the same write,
// ahead of the MIGRATE, so that keys_migrated counts the keys moved, not
// those a client moved first or that expired.
func (m *State) migrate(conn *pools.Conn, from, to *pools.Server, keys [][]byte) (call *waitCall, present int) {
	call = newWaitCall(migrateFrame(m.cfg, to, keys))
	calls := []*waitCall{call}
	if len(keys) > 1 {
		calls = []*waitCall{existsCall(keys), call}
	}
	m.lanes.acquire(from, to)
	sendAll(conn, calls)
	m.lanes.release(from, to)
	present = len(keys)
	if len(calls) > 1 {
		if n, ok := existing(calls[0]); ok {
			present = n
		}
	}
	return call, present
}

// existsCall is EXISTS of keys.
func existsCall(keys [][]byte) *waitCall {
	return newWaitCall(resp.AppendCommand(nil, append([][]byte{existsCommand}, keys...)...))
}

// existing reads the reply of an EXISTS.
func existing(c *waitCall) (int, bool) {
	if c.Err != nil {
		return 0, false
	}
	n, _, err := resp.ReadInteger(c.Reply)
	return int(n), err == nil
}

// migrated counts the keys of an answered MIGRATE of keys, of which the
// source held present, and returns its error: OK moved them, NOKEY found
// none of them (moved already, or never written), an error reply is an
// *errMigrate, anything else failed. MIGRATE moves every key the target
// accepts, even past one it refuses: after an error reply, the keys the
// source no longer holds (EXISTS on conn, its connection) count as moved.
func (mv *Mover) migrated(conn *pools.Conn, c *pools.Call, keys [][]byte, present int) error {
	switch {
	case c.Err != nil:
		return c.Err
	case bytes.Equal(c.Reply, okReply):
		if present > 0 {
			mv.pool.Migrated(present)
		}
	case bytes.Equal(c.Reply, nokeyReply):
	case resp.IsError(c.Reply) && len(keys) > 1:
		ex := existsCall(keys)
		sendAll(conn, []*waitCall{ex})
		if left, ok := existing(ex); ok && left < present {
			mv.pool.Migrated(present - left)
		}
		return &errMigrate{string(bytes.TrimRight(c.Reply[1:], "\r\n"))}
	case resp.IsError(c.Reply):
		return &errMigrate{string(bytes.TrimRight(c.Reply[1:], "\r\n"))}
	default:
		return fmt.Errorf("unexpected reply %q", resp.Clip(c.Reply))
	}
	return nil
}

var (
	okReply    = []byte("+OK\r\n")
	nokeyReply = []byte("+NOKEY\r\n")
)

// migrateFrame is the MIGRATE of keys to server to, in the pool's
// database, with its credentials:
//
//	MIGRATE host port "" db timeout REPLACE [AUTH pw | AUTH2 user pw] KEYS k...
//
// REPLACE lets a retried move overwrite what an interrupted one left on
// the target; the source deletes each key only once the target has it.
func migrateFrame(cfg *config.Pool, to *pools.Server, keys [][]byte) []byte {
	host, port, _ := net.SplitHostPort(to.Addr())
	args := [][]byte{[]byte("MIGRATE"), []byte(host), []byte(port), nil,
		[]byte(strconv.Itoa(cfg.RedisDB)), []byte(strconv.FormatInt(migrateTimeout(cfg).Milliseconds(), 10)),
		[]byte("REPLACE")}
	switch {
	case cfg.RedisAuth != "" && cfg.RedisUsername != "":
		args = append(args, []byte("AUTH2"), []byte(cfg.RedisUsername), []byte(cfg.RedisAuth))
	case cfg.RedisAuth != "":
		args = append(args, []byte("AUTH"), []byte(cfg.RedisAuth))
	}
	args = append(args, []byte("KEYS"))
	args = append(args, keys...)
	return resp.AppendCommand(nil, args...)
}

// migrateTimeout is MIGRATE's timeout: how long the old owner waits for
// the new one on each step of a move. It is half the pool's timeout, so
// that a MIGRATE that fails is answered within the pool's timeout; 5 s
// for a pool without one.
func migrateTimeout(cfg *config.Pool) time.Duration {
	if cfg.Timeout > 0 {
		return max(cfg.Timeout/2, time.Millisecond)
	}
	return 5 * time.Second
}
