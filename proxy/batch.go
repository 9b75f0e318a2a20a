package proxy

import (
	"sync"
	"time"

	"github.com/shardproxy/shardproxy/codec/memcache"
	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/internal/sockio"
	"github.com/shardproxy/shardproxy/pools"
)

// maxBatch bounds the requests taken from one client before their replies
// are written, and so the memory one client can hold.
const maxBatch = 512

// answer is one request's place in a client's reply order: a local reply, one
// forwarded call, or the fragments of a split multi-key command.
type answer struct {
	local    [2]int // span of a local reply in batch.local
	first, n int    // calls[first:first+n]
	merge    uint8  // protocol-specific merge of the fragments
	order    [2]int // span in batch.order: fragment index per key
	noReply  bool   // the client wants no reply (memcache noreply)
	failed   bool   // its reply is an error, or its call failed (set as the reply is written)
}

// batch is the requests read from one client and not yet answered. It lives
// only while the client is active and goes back to a sync.Pool when idle.
type batch struct {
	in      []byte   // read buffer; calls' frames alias it until replied
	small   []byte   // the batch's own read buffer while in has grown
	out     []byte   // replies waiting to be written
	iov     [][]byte // out's pieces and large replies, for writev
	scratch []byte   // fragment and re-encoded frames
	local   []byte   // local replies
	answers []answer
	calls   []*pools.Call
	ncalls  int
	order   []int
	conns   []*pools.Conn // connections to flush
	okeys   [][]byte      // memcache: the key of each entry of order
	keys    [][]byte
	cursors []int
	rreq    resp.Request     // RESP parse state
	mreq    memcache.Request // memcache parse state
	// rt is the pool's routing, loaded once per batch: every request of
	// the batch is routed by it.
	rt *routing
	// queued is when the batch began to enqueue its calls: their
	// Queued, so that a batch reads the clock once.
	queued time.Time
	// arrived is when the read that brought the batch's requests
	// returned: their latency counts from it (countServed).
	arrived time.Time
	// cmdID and cmdRun are the run of requests of one command not yet
	// added to the pool's counters (see countCommand); served are the
	// requests counted whose outcome is not yet.
	cmdID  uint16
	cmdRun int64
	served []served
	// replicaReads are the calls sent to replicas (replicas.go).
	replicaReads []replicaRead
	// iovecs is a bare descriptor's writev scratch (client.tryWritev).
	iovecs sockio.Iovecs
}

var freeBatches = sync.Pool{New: func() any { return &batch{in: make([]byte, 0, batchIn)} }}

// batchIn is the size of a batch's own read buffer.
const batchIn = 16 << 10

func getBatch() *batch { return freeBatches.Get().(*batch) }

// release returns the batch to the pool, dropping buffers that grew large
// so an idle proxy gives memory back.
func (bt *batch) release() {
	bt.reset()
	if cap(bt.in) > batchIn {
		sockio.PutBuffer(bt.in)
		bt.in, bt.small = bt.small, nil
		if bt.in == nil {
			bt.in = make([]byte, 0, batchIn)
		}
	}
	bt.in = bt.in[:0]
	if cap(bt.out) > 64<<10 {
		bt.out = nil
	}
	if cap(bt.scratch) > 64<<10 {
		bt.scratch = nil
	}
	if cap(bt.local) > 64<<10 {
		bt.local = nil
	}
	freeBatches.Put(bt)
}

// reset forgets the batch's requests, keeping its buffers.
func (bt *batch) reset() {
	for i := 0; i < bt.ncalls; i++ {
		bt.calls[i].Reset(64 << 10)
	}
	bt.ncalls = 0
	bt.rt = nil
	bt.out = bt.out[:0]
	bt.scratch = bt.scratch[:0]
	bt.local = bt.local[:0]
	bt.answers = bt.answers[:0]
	bt.order = bt.order[:0]
	clear(bt.okeys)
	bt.okeys = bt.okeys[:0]
	clear(bt.conns)
	bt.conns = bt.conns[:0]
	clear(bt.replicaReads)
	bt.replicaReads = bt.replicaReads[:0]
	bt.served = bt.served[:0]
}

// newCall hands out a call from the batch's arena.
func (bt *batch) newCall() *pools.Call {
	if bt.ncalls == len(bt.calls) {
		bt.calls = append(bt.calls, &pools.Call{})
	}
	c := bt.calls[bt.ncalls]
	bt.ncalls++
	return c
}

// localStart starts an answer whose reply the caller appends to bt.local, then
// closes with endLocal.
func (bt *batch) localStart() int { return len(bt.local) }

func (bt *batch) localEnd(start int) {
	bt.answers = append(bt.answers, answer{local: [2]int{start, len(bt.local)}})
}

// forward records a request sent whole to one server.
func (bt *batch) forward(cl *client, srv *pools.Server, frame []byte, kind uint8, noReply bool) {
	s := answer{first: bt.ncalls, n: 1, noReply: noReply}
	bt.answers = append(bt.answers, s)
	bt.send(cl, srv, frame, kind, noReply)
}

// send enqueues one call for the current answer.
func (bt *batch) send(cl *client, srv *pools.Server, frame []byte, kind uint8, noReply bool) {
	c := bt.newCall()
	c.Frame, c.Kind, c.NoReply, c.Done, c.Sent, c.Queued = frame, kind, noReply, cl, cl.received, bt.queued
	conn := cl.conn(srv)
	cl.pending.Add(1)
	conn.Enqueue(c)
	bt.addConn(conn)
}

// callFailed says a call of answer s failed.
func (bt *batch) callFailed(s *answer) bool {
	for _, c := range bt.calls[s.first : s.first+s.n] {
		if c.Err != nil {
			return true
		}
	}
	return false
}

// addConn adds conn to the connections flush writes, once.
func (bt *batch) addConn(conn *pools.Conn) {
	for _, k := range bt.conns {
		if k == conn {
			return
		}
	}
	bt.conns = append(bt.conns, conn)
}

// flush writes every connection the batch used.
func (bt *batch) flush() {
	for _, c := range bt.conns {
		c.Flush()
	}
}

// group gives each key (keys[0], keys[step], ...) a fragment: one per server,
// numbered in order of first appearance. It appends the fragment number of
// each key to bt.order and the key to bt.okeys, and returns each
// fragment's placed.fragment (fragServer gives the ring index of its
// server in bt.rt; valid until the next group) and
// where the keys start in bt.order. ok is false, and nothing is recorded,
// when a key has no server.
func (bt *batch) group(keys [][]byte, step int) (frags []int, start int, ok bool) {
	start = len(bt.order)
	frags = bt.cursors[:0]
	for k := 0; k < len(keys); k += step {
		si := bt.rt.fragment(keys[k])
		if si < 0 {
			bt.ungroup(start)
			return nil, start, false
		}
		f := 0
		for f < len(frags) && frags[f] != si {
			f++
		}
		if f == len(frags) {
			frags = append(frags, si)
		}
		bt.order = append(bt.order, f)
		bt.okeys = append(bt.okeys, keys[k])
	}
	bt.cursors = frags[:0]
	return frags, start, true
}

// ungroup forgets the keys group recorded from start on.
func (bt *batch) ungroup(start int) {
	clear(bt.okeys[start:])
	bt.order = bt.order[:start]
	bt.okeys = bt.okeys[:start]
}
