package proxy

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/shardproxy/shardproxy/codec/memcache"
)

// Requests are counted per command and pool in a fixed array of counters,
// indexed by a small id: a RESP command's id is in its row of the command
// table (command.id), a memcache command's is its memcache.Command. Id 0
// counts the requests whose command is not in the table, so no name a
// client sends ever becomes a counter's name.

// commandSlots is the size of a pool's array of command counters.
const commandSlots = 512

// unknownCommand is the name under which requests for commands outside the
// table are counted.
const unknownCommand = "unknown"

// numberCommands gives each row of the command table its id: 1, 2, ... in
// the order of the names, 0 being unknownCommand's.
func numberCommands(m map[string]*command) {
	names := slices.Sorted(maps.Keys(m))
	if len(names) >= commandSlots {
		panic(fmt.Sprintf("proxy: %d commands do not fit %d command counters: raise commandSlots", len(names), commandSlots))
	}
	for i, n := range names {
		m[n].id = uint16(i + 1)
	}
}

// redisCommandNames names the counter of each id of the command table, in
// lower case as Redis's own INFO commandstats does.
var redisCommandNames = func() []string {
	names := make([]string, len(commands)+1)
	names[0] = unknownCommand
	for n, c := range commands {
		names[c.id] = strings.ToLower(n)
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
// command changes or at flushCommands.
func (bt *batch) countCommand(ps *poolStats, id uint16) {
	if bt.cmdRun > 0 && bt.cmdID != id {
		ps.commands[bt.cmdID].Add(bt.cmdRun)
		bt.cmdRun = 0
	}
	bt.cmdID = id
	bt.cmdRun++
}

// flushCommands adds the current run of countCommand to the pool's
// counters.
func (bt *batch) flushCommands(ps *poolStats) {
	if bt.cmdRun > 0 {
		ps.commands[bt.cmdID].Add(bt.cmdRun)
		bt.cmdRun = 0
	}
}
