package proxy

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/shardproxy/shardproxy/codec/memcache"
	"github.com/shardproxy/shardproxy/commands"
	"github.com/shardproxy/shardproxy/pools"
	"github.com/shardproxy/shardproxy/stats"
)

// Requests are counted per command and pool in a fixed array of counters,
// indexed by a small id: a RESP command's id is in its row of the command
// table (commands.Command.ID), a memcache command's is its
// memcache.Command. Id 0 counts the requests whose command is not in the
// table, so no name a client sends ever becomes a counter's name.
//
// What became of the requests is counted per command too, once their
// batch's replies are written (countServed): the error replies, and the
// time from the batch's read to that write, in a histogram with the
// servers' buckets (pools.LatencyBounds). Every request of a batch shares
// the batch's arrival and write times, so a batch reads the clock once
// more, and a run of one command costs two or three atomic adds.

// commandSlots is the size of a pool's array of command counters.
const commandSlots = 512

// unknownCommand is the name under which requests for commands outside the
// table are counted.
const unknownCommand = "unknown"

// redisCommandNames names the counter of each id of the command table
// (commands.Command.ID: 1, 2, ... in the order of the names, 0 being
// unknownCommand's), in lower case as Redis's own INFO commandstats does.
var redisCommandNames = func() []string {
	if commands.Len() >= commandSlots {
		panic(fmt.Sprintf("proxy: %d commands do not fit %d command counters: raise commandSlots", commands.Len(), commandSlots))
	}
	names := make([]string, commands.Len()+1)
	names[0] = unknownCommand
	for c := range commands.All() {
		names[c.ID] = strings.ToLower(c.Name)
	}
	return names
}()

// memcacheCommandNames names the counter of each memcache.Command, as the
// protocol spells it ("get", "flush_all", "mg").
var memcacheCommandNames = func() []string {
	names := []string{unknownCommand}
	for c := 1; c < commandSlots; c++ {
		n := memcache.Command(c).String()
		if n == unknownCommand {
			break
		}
		names = append(names, n)
	}
	return names
}()

// countCommand counts a request for the command with the given id. Runs of
// one command (a pipeline of GETs) are counted as one atomic add, when the
// command changes or at flushCommands. The request is kept in bt.served
// for countServed.
func (bt *batch) countCommand(ps *poolStats, id uint16) {
	if bt.cmdRun > 0 && bt.cmdID != id {
		ps.commands[bt.cmdID].Add(bt.cmdRun)
		bt.cmdRun = 0
	}
	bt.cmdID = id
	bt.cmdRun++
	bt.served = append(bt.served, served{answer: -1, id: id})
}

// flushCommands adds the current run of countCommand to the pool's
// counters.
func (bt *batch) flushCommands(ps *poolStats) {
	if bt.cmdRun > 0 {
		ps.commands[bt.cmdID].Add(bt.cmdRun)
		bt.cmdRun = 0
	}
}

// commandOutcome is what became of one command's requests in a pool: the
// error replies, and the latency as the client sees it.
type commandOutcome struct {
	errors  atomic.Int64
	sum     atomic.Int64 // nanoseconds, over every request
	buckets [pools.LatencyBuckets]atomic.Uint64
}

// commandIDs is the number of command ids of either protocol: the length
// of a pool's outcomes.
var commandIDs = max(len(redisCommandNames), len(memcacheCommandNames))

// observe counts n requests of the command, errs of them answered by an
// error, that took d each (bucket b of pools.LatencyBounds).
func (o *commandOutcome) observe(b int, d time.Duration, n, errs int64) {
	o.buckets[b].Add(uint64(n))
	o.sum.Add(int64(d) * n)
	if errs > 0 {
		o.errors.Add(errs)
	}
}

// served is a request of the batch counted by countCommand, kept until its
// reply is written: its command, its answer in bt.answers (-1 when it has
// none, as a memcache noreply or quit), and failed when it failed without
// an answer to show it (a memcache noreply request refused).
type served struct {
	answer int32
	id     uint16
	failed bool
}

// answered gives the request counted last, if it was counted after the
// batch had na answers, the first answer recorded since: proto.parse adds
// at most one request and its answers.
func (bt *batch) answered(nr, na int) {
	if len(bt.served) == nr+1 && len(bt.answers) > na {
		bt.served[nr].answer = int32(na)
	}
}

// failedSilently marks the request counted last as failed although no
// reply says so (noreply).
func (bt *batch) failedSilently() {
	if n := len(bt.served); n > 0 {
		bt.served[n-1].failed = true
	}
}

// holdServed takes the request counted last out of bt.served, for a reply
// written by itself after the batch's replies so far (pubsub.go): those
// are counted without it. putServed gives it back.
func (bt *batch) holdServed() served {
	n := len(bt.served)
	if n == 0 {
		return served{answer: -1, id: unknownServed}
	}
	cur := bt.served[n-1]
	bt.served = bt.served[:n-1]
	return cur
}

// unknownServed marks the served of holdServed when no request was
// counted: putServed drops it.
const unknownServed = ^uint16(0)

// putServed gives back the request holdServed took, its reply written by
// itself, failed when that reply is an error; it is counted with the
// batch's next write, or at the batch's end.
func (bt *batch) putServed(s served, failed bool) {
	if s.id == unknownServed {
		return
	}
	s.answer, s.failed = -1, s.failed || failed
	bt.served = append(bt.served, s)
}

// countServed counts what became of the batch's requests whose replies
// were written at now: per command, those answered by an error, and the
// time since the batch's arrival. It forgets them.
func (bt *batch) countServed(ps *poolStats, now time.Time) {
	if len(bt.served) == 0 {
		return
	}
	d := max(now.Sub(bt.arrived), 0)
	b := pools.LatencyBucket(d)
	id, run, errs := bt.served[0].id, int64(0), int64(0)
	for i := range bt.served {
		s := &bt.served[i]
		if s.id != id {
			ps.outcomes[id].observe(b, d, run, errs)
			id, run, errs = s.id, 0, 0
		}
		run++
		if s.failed || s.answer >= 0 && int(s.answer) < len(bt.answers) && bt.answers[s.answer].failed {
			errs++
		}
	}
	ps.outcomes[id].observe(b, d, run, errs)
	bt.served = bt.served[:0]
}

// commandCounts reads the counters of the commands named names (by id)
// that were requested at least once.
func (ps *poolStats) commandCounts(names []string, bounds []time.Duration) []stats.Command {
	var out []stats.Command
	for id, name := range names {
		n := ps.commands[id].Load()
		if n == 0 {
			continue
		}
		o := &ps.outcomes[id]
		c := stats.Command{Name: name, Requests: n, Errors: o.errors.Load(),
			Latency: stats.Latency{Bounds: bounds, Buckets: make([]uint64, len(o.buckets))}}
		for i := range o.buckets {
			c.Latency.Buckets[i] = o.buckets[i].Load()
		}
		c.Latency.Sum = time.Duration(o.sum.Load())
		out = append(out, c)
	}
	return out
}
