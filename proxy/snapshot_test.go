package proxy

import (
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/codec/memcache"
	"github.com/shardproxy/shardproxy/commands"
)

// TestCommandCounterIDs checks the command counters' ids: every row of the
// command table has its own id within the counters, named after it in
// lower case, and id 0 is "unknown"; memcache's names are its commands'.
func TestCommandCounterIDs(t *testing.T) {
	seen := map[uint16]string{}
	for c := range commands.All() {
		name := c.Name
		if c.ID == 0 || int(c.ID) >= commandSlots {
			t.Errorf("%s: id %d outside 1..%d", name, c.ID, commandSlots-1)
			continue
		}
		if other, dup := seen[c.ID]; dup {
			t.Errorf("%s and %s share id %d", name, other, c.ID)
		}
		seen[c.ID] = name
		if got := redisCommandNames[c.ID]; got != strings.ToLower(name) {
			t.Errorf("%s: counter named %q", name, got)
		}
	}
	if len(redisCommandNames) != commands.Len()+1 || redisCommandNames[0] != unknownCommand {
		t.Errorf("%d RESP counter names for %d commands, the first %q", len(redisCommandNames), commands.Len(), redisCommandNames[0])
	}
	if memcacheCommandNames[0] != unknownCommand {
		t.Errorf("memcache counter 0 is %q", memcacheCommandNames[0])
	}
	for id, name := range memcacheCommandNames[1:] {
		if got := memcache.Command(id + 1).String(); got != name || got == unknownCommand {
			t.Errorf("memcache counter %d named %q, its command %q", id+1, name, got)
		}
	}
	if got := memcacheCommandNames[len(memcacheCommandNames)-1]; got != memcache.CmdMn.String() {
		t.Errorf("memcache counters end with %q, not with the last command, mn", got)
	}
}

// TestCountCommandRuns checks that runs of one command are added to the
// pool's counters once, and that nothing is lost between runs.
func TestCountCommandRuns(t *testing.T) {
	var ps poolStats
	var bt batch
	get, set := commands.Lookup([]byte("GET")).ID, commands.Lookup([]byte("SET")).ID
	for _, id := range []uint16{get, get, get, set, 0, get, get} {
		bt.countCommand(&ps, id)
	}
	if n := ps.commands[get].Load(); n != 3 {
		t.Errorf("GET counted %d before the flush, want the first run of 3", n)
	}
	bt.flushCommands(&ps)
	bt.flushCommands(&ps) // a second flush adds nothing
	for _, c := range []struct {
		id   uint16
		want int64
	}{{get, 5}, {set, 1}, {0, 1}} {
		if got := ps.commands[c.id].Load(); got != c.want {
			t.Errorf("%s counted %d, want %d", redisCommandNames[c.id], got, c.want)
		}
	}
}
