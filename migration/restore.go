package migration

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/pools"
)

// A source server that cannot MIGRATE (no network path to the target, or
// MIGRATE disabled or not permitted, as on some hosted Redis) has its keys
// moved through the proxy instead: DUMP and PTTL on the source, RESTORE
// REPLACE on the target, DEL on the source, while the proxy holds the keys
// (inflight), so that its own clients wait for the move. Unlike MIGRATE
// this is not atomic on the source: a write that another proxy sends to
// the source between the DUMP and the DEL is lost. The README says so.

// throughRetry is how long a source and target whose MIGRATE failed with
// an error reply move keys through the proxy before MIGRATE is tried
// again.
const throughRetry = 30 * time.Second

// errMigrate is a MIGRATE the source answered with an error: the keys
// may still move through the proxy.
type errMigrate struct{ msg string }

func (e *errMigrate) Error() string { return e.msg }

// lane names the move of keys from one server to another, by address:
// the mover and the clients reach the same servers through different
// pools.Server values.
func lane(from, to *pools.Server) string { return from.Addr() + ">" + to.Addr() }

// through reports whether keys from one server to another go through the
// proxy now.
func (m *State) through(from, to *pools.Server) bool {
	v, ok := m.proxied.Load(lane(from, to))
	return ok && time.Now().Before(v.(time.Time))
}

// move moves keys from one server to another: with MIGRATE, or through
// the proxy while the source cannot MIGRATE, on connections of mc (the
// migration's for a client's access, the mover's own). lock says the caller does not hold the keys
// (the mover): they are then held while they go through the proxy, and
// those a client is moving are left to it. It returns the move's error,
// counted in migration_errors.
func (m *State) move(mv *Mover, mc *moveConns, from, to *pools.Server, keys [][]byte, lock bool) error {
	src, err := mc.get(from)
	if err != nil {
		return err
	}
	defer mc.put(from, src)
	var merr error
	if !m.through(from, to) {
		call, present := m.migrate(src.Conn(0), from, to, keys)
		merr = mv.migrated(src.Conn(0), &call.Call, keys, present)
		var em *errMigrate
		if !errors.As(merr, &em) {
			if merr != nil {
				mv.pool.Failed()
			}
			return merr
		}
		if pause, ok := mv.pool.Redirected(em.msg); ok {
			return &errRedirect{msg: em.msg, pause: pause} // counted if it is not followed
		}
		m.proxied.Store(lane(from, to), time.Now().Add(throughRetry))
		mv.log.Warn("migration: MIGRATE failed, moving keys through the proxy", "from", from.Name(), "to", to.Name(),
			"err", merr, "retry_migrate_after", throughRetry)
	}
	dst, err := mc.get(to)
	if err != nil {
		return err
	}
	defer mc.put(to, dst)
	var others []*keyMove
	if lock {
		keys, others = m.hold(keys)
	}
	err = m.moveThrough(mv, src.Conn(0), dst.Conn(0), keys)
	if lock {
		m.release(keys, moveError(from, to, err))
	}
	for _, km := range others {
		<-km.done
		if err == nil && km.err != nil {
			return km.err // counted by the client that moved it
		}
	}
	if err != nil {
		mv.pool.Failed()
		if merr != nil {
			err = fmt.Errorf("MIGRATE: %v; through the proxy: %w", merr, err)
		}
	}
	return err
}

// moveError is the error told to the requests waiting for a move of keys
// from one server to another, or nil.
func moveError(from, to *pools.Server, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("from %s to %s: %w", from.Name(), to.Name(), err)
}

// hold marks keys as being moved and returns those no client was moving,
// and the moves of the others.
func (m *State) hold(keys [][]byte) (held [][]byte, others []*keyMove) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		if km, ok := m.inflight[string(k)]; ok {
			others = append(others, km)
			continue
		}
		m.inflight[string(k)] = &keyMove{done: make(chan struct{})}
		held = append(held, k)
	}
	return held, others
}

// release ends the moves of keys, telling whoever waits for them err.
func (m *State) release(keys [][]byte, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		if km, ok := m.inflight[string(k)]; ok {
			delete(m.inflight, string(k))
			km.err = err
			close(km.done)
		}
	}
}

var (
	dumpCommand    = []byte("DUMP")
	pttlCommand    = []byte("PTTL")
	restoreCommand = []byte("RESTORE")
	delCommand     = []byte("DEL")
	existsCommand  = []byte("EXISTS")
	memoryCommand  = []byte("MEMORY")
	usageArg       = []byte("USAGE")
	replaceArg     = []byte("REPLACE")
)

// throughBudget bounds the bytes of values the proxy holds at once while
// it moves keys through: the keys are dumped and restored in windows whose
// MEMORY USAGE adds up to at most this, of one key at least. A big value
// is held once, in the DUMP reply it came in, and sent on from there.
const throughBudget = 8 << 20

// moveThrough moves keys from the server of src to the server of dst
// through the proxy: DUMP and PTTL of every key on the source, RESTORE
// REPLACE of those it holds on the target, window after window (see
// throughBudget), then DEL on the source of those restored, each step one
// pipeline. A key restored whose DEL failed is remembered (m.undeleted):
// its next move only deletes it, since its value on the target may be
// newer by then. It returns the first error; the keys moved count in
// keys_migrated.
func (m *State) moveThrough(mv *Mover, src, dst *pools.Conn, keys [][]byte) error {
	var restore, del [][]byte
	m.mu.Lock()
	for _, k := range keys {
		if m.undeleted[string(k)] {
			del = append(del, k)
		} else {
			restore = append(restore, k)
		}
	}
	m.mu.Unlock()
	var firstErr error
	sizes := memoryUsage(src, restore)
	for len(restore) > 0 {
		n, sum := 1, sizes[0]
		for n < len(restore) && sum+sizes[n] <= throughBudget {
			sum += sizes[n]
			n++
		}
		restored, err := restoreWindow(src, dst, restore[:n])
		del = append(del, restored...)
		if firstErr == nil {
			firstErr = err
		}
		restore, sizes = restore[n:], sizes[n:]
	}
	if err := m.deleteMoved(mv, src, del); firstErr == nil {
		firstErr = err
	}
	return firstErr
}

// memoryUsage returns the MEMORY USAGE of each key on the server of conn;
// throughBudget for a key it cannot tell (the command refused, say), so
// that such a key goes alone.
func memoryUsage(conn *pools.Conn, keys [][]byte) []int {
	calls := make([]*waitCall, len(keys))
	for i, k := range keys {
		calls[i] = newWaitCall(resp.AppendCommand(nil, memoryCommand, usageArg, k))
	}
	sendAll(conn, calls)
	sizes := make([]int, len(keys))
	for i, c := range calls {
		sizes[i] = throughBudget
		if c.Err != nil || len(c.Reply) == 0 {
			continue
		}
		switch v, _, err := resp.ReadInteger(c.Reply); {
		case err == nil:
			sizes[i] = int(min(max(v, 0), throughBudget))
		case bytes.Equal(c.Reply, nilBulk):
			sizes[i] = 0 // gone
		}
	}
	return sizes
}

// restoreWindow moves keys from the source to the target, short of their
// DEL: DUMP and PTTL of each on the source, then RESTORE REPLACE of those
// found on the target, the serialized value sent from the DUMP reply it
// came in. It returns the keys restored and the first error.
func restoreWindow(src, dst *pools.Conn, keys [][]byte) (restored [][]byte, firstErr error) {
	fail := func(k []byte, step string, err error) {
		if firstErr == nil {
			firstErr = fmt.Errorf("%s '%s': %w", step, resp.Clip(k), err)
		}
	}
	reads := make([]*waitCall, 0, 2*len(keys))
	for _, k := range keys {
		reads = append(reads, newWaitCall(resp.AppendCommand(nil, dumpCommand, k)),
			newWaitCall(resp.AppendCommand(nil, pttlCommand, k)))
	}
	sendAll(src, reads)
	var restores []*waitCall
	var held [][]byte
	for i, k := range keys {
		payload, ttl, err := dumped(reads[2*i], reads[2*i+1])
		if err != nil {
			fail(k, "DUMP", err)
			continue
		}
		if payload == nil {
			continue // moved already, or never written
		}
		restores = append(restores, restoreCall(k, ttl, reads[2*i].Reply))
		held = append(held, k)
	}
	sendAll(dst, restores)
	for j, c := range restores {
		if err := okCall(c); err != nil {
			fail(held[j], "RESTORE", err)
			continue
		}
		restored = append(restored, held[j])
	}
	return restored, firstErr
}

// restoreCall is RESTORE key ttl payload REPLACE, dump being the DUMP
// reply (the payload as a bulk string): sent in three parts, the payload
// from where it lies.
func restoreCall(key []byte, ttl int64, dump []byte) *waitCall {
	head := resp.AppendArray(nil, 5)
	head = resp.AppendBulk(head, restoreCommand)
	head = resp.AppendBulk(head, key)
	head = resp.AppendBulk(head, strconv.AppendInt(nil, ttl, 10))
	c := newWaitCall(nil)
	c.Parts = [][]byte{head, dump, resp.AppendBulk(nil, replaceArg)}
	return c
}

// deleteMoved deletes keys restored on the target from the source, and
// counts them moved. A key whose DEL fails is remembered in m.undeleted.
func (m *State) deleteMoved(mv *Mover, src *pools.Conn, del [][]byte) error {
	var firstErr error
	dels := make([]*waitCall, len(del))
	for j, k := range del {
		dels[j] = newWaitCall(resp.AppendCommand(nil, delCommand, k))
	}
	sendAll(src, dels)
	moved := 0
	m.mu.Lock()
	for j, c := range dels {
		k := del[j]
		if c.Err != nil || len(c.Reply) == 0 || c.Reply[0] != ':' {
			if firstErr == nil {
				firstErr = fmt.Errorf("DEL '%s': %w", resp.Clip(k), callError(&c.Call))
			}
			if m.undeleted == nil {
				m.undeleted = map[string]bool{}
			}
			m.undeleted[string(k)] = true
			continue
		}
		if !m.undeleted[string(k)] {
			moved++
		}
		delete(m.undeleted, string(k))
	}
	m.mu.Unlock()
	if moved > 0 {
		mv.pool.Migrated(moved)
	}
	return firstErr
}

// sendAll enqueues calls on conn, flushes, and waits for their answers.
func sendAll(conn *pools.Conn, calls []*waitCall) {
	if len(calls) == 0 {
		return
	}
	for _, c := range calls {
		conn.Enqueue(&c.Call)
	}
	conn.Flush()
	for _, c := range calls {
		<-c.done
	}
}

// dumped reads the replies to DUMP and PTTL of one key: its serialized
// value (nil when the key is gone) and the TTL for RESTORE (0: none).
func dumped(dump, pttl *waitCall) (payload []byte, ttl int64, err error) {
	if dump.Err != nil || pttl.Err != nil {
		return nil, 0, callError(&dump.Call, &pttl.Call)
	}
	if bytes.Equal(dump.Reply, nilBulk) {
		return nil, 0, nil
	}
	v, _, perr := resp.ParseValue(dump.Reply)
	payload, ok := v.Bulk()
	if perr != nil || !ok {
		return nil, 0, callError(&dump.Call)
	}
	r := pttl.Reply
	if len(r) < 4 || r[0] != ':' {
		return nil, 0, callError(&pttl.Call)
	}
	ttl, err = strconv.ParseInt(string(bytes.TrimRight(r[1:], "\r\n")), 10, 64)
	switch {
	case err != nil:
		return nil, 0, callError(&pttl.Call)
	case ttl == -2:
		return nil, 0, nil // expired between the two
	case ttl == -1:
		ttl = 0
	case ttl == 0:
		ttl = 1 // expires now: 0 would make it live for ever
	}
	return payload, ttl, nil
}

var nilBulk = []byte("$-1\r\n")

// okCall returns the error of a call that should have been answered +OK.
func okCall(c *waitCall) error {
	if c.Err == nil && bytes.Equal(c.Reply, okReply) {
		return nil
	}
	return callError(&c.Call)
}

// callError is the first failure among calls: a connection's error, an
// error reply, or an unexpected reply.
func callError(calls ...*pools.Call) error {
	for _, c := range calls {
		if c.Err != nil {
			return c.Err
		}
	}
	for _, c := range calls {
		if resp.IsError(c.Reply) {
			return errors.New(string(bytes.TrimRight(c.Reply[1:], "\r\n")))
		}
	}
	return fmt.Errorf("unexpected reply %q", resp.Clip(calls[0].Reply))
}
