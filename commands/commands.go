// Package commands is Redis's commands as the proxy knows them: how each is
// served (its Kind), its arity, where its keys are (COMMAND INFO's key
// specifications), how a split command's replies merge, what it does to a
// session or a subscription. A Command is one row of the table; Lookup
// finds a row by name. The table is data and the functions over it are
// pure: they read a request's arguments and allocate nothing.
package commands

import (
	"iter"
	"maps"
	"slices"
)

// Kind says how the proxy serves a command. The zero Kind is no row's.
type Kind uint8

// The kinds of commands.
const (
	Single      Kind = iota + 1 // one key at KeyAt: forwarded whole to its server
	SameServer                  // several keys (see Command.Keys), all on one server, else refused
	Split                       // multi-key, split per server and merged
	Local                       // answered by the proxy
	Keyspace                    // over the whole keyspace: every server of the pool (proxy/keyspace.go)
	Unsupported                 // known, but cannot be served through a proxy
	Session                     // a transaction's own command (MULTI, EXEC, ...): see proxy/session.go
	PubSub                      // a subscription command, or PUBSUB: see proxy/pubsub.go
)

// What a command does to a client's session (Command.Sess; proxy/session.go).
const (
	SessNone     uint8 = iota
	SessMulti          // MULTI
	SessExec           // EXEC
	SessDiscard        // DISCARD
	SessWatch          // WATCH keys
	SessUnwatch        // UNWATCH
	SessBlocking       // a command that may block (BLPOP ...): run on a session connection
)

// How the fragments of a split command are merged (Command.Merge).
const (
	MergeNone  uint8 = iota
	MergeArray       // MGET: element per key, in key order
	MergeSum         // DEL, UNLINK, EXISTS, TOUCH: integers added
	MergeOK          // MSET: +OK once every part is +OK
	// The keyspace commands' merges (proxy/keyspace.go), from MergeConcat on.
	MergeConcat // KEYS: the arrays of every server, one after another
	MergeRandom // RANDOMKEY: a random server's key, if it has one
	MergeScan   // SCAN: one server's page, its cursor made the pool's
)

// The subscription commands (Command.Subscription; proxy/pubsub.go): the
// kind of subscription and whether it ends some.
const (
	SubNone    uint8 = 0
	SubChannel uint8 = 1 << iota // SUBSCRIBE, UNSUBSCRIBE
	SubPattern                   // PSUBSCRIBE, PUNSUBSCRIBE
	SubShard                     // SSUBSCRIBE, SUNSUBSCRIBE
	SubInfo                      // PUBSUB
	SubEnd                       // the UN- form
)

// Command is one row of the command table. Its keys are where the server's
// own key specifications put them (COMMAND INFO): a fixed range, a range
// counted by a numkeys argument, and an option that names a key. Every row
// is checked against the server's COMMAND GETKEYS in keys_test.go.
type Command struct {
	Name         string // upper case
	Kind         Kind
	Arity        int         // the server's arity (COMMAND INFO), counting the name: n exactly, -n at least n
	KeyAt        int         // first key of the fixed range; 0: none
	LastKey      int         // last key of the fixed range; negative counts from the end (-1 = last)
	Step         int         // distance between keys of the fixed range (MSET: 2)
	NumkeysAt    int         // argument that counts the keys right after it (ZUNIONSTORE, EVAL); 0: none
	OptsAt       int         // first option argument, when Opts is set
	Opts         []KeyOption // options the server parses from OptsAt on (SORT, GEORADIUS)
	Merge        uint8       // Split: MergeArray, MergeSum or MergeOK
	Sess         uint8       // SessNone, or what it does to the client's session
	Subscription uint8       // SubNone, or which subscription command it is
	// Channel says its "key" is a pub/sub channel, placed as a key is but
	// not one to the server (PUBLISH).
	Channel bool
	// keysFunc finds the keys where no fixed position says where they
	// are (XREAD's, after its STREAMS option); nil for the others.
	keysFunc func(dst, args [][]byte) ([][]byte, KeysErr)
	// Subs are the subcommands of a command whose keys depend on its
	// first argument (XINFO, XGROUP): each a row of its own, named as
	// the subcommand ("STREAM"), found by args[1] (see subKeys).
	Subs []Command
	// ID numbers the rows of the table 1, 2, ... Len() in the order of
	// their names (0 is no row's): the index of the command's request
	// counter in the proxy (proxy/commandcount.go).
	ID uint16
	// ReadOnly says the command only reads (the server flags it
	// readonly, and it writes nothing): with replica_reads it may go to a
	// replica.
	ReadOnly bool
}

// KeyOption is an option a command parses after its fixed arguments: its
// name, how many arguments follow it, and whether that argument is a key
// (SORT's and GEORADIUS's STORE destination).
type KeyOption struct {
	Name string // upper case
	Args int
	Key  bool // its argument is a key
	Last bool // of several such options only the last names a key (SORT's STORE)
}

// table is the command table, keyed by upper-case name.
var table = buildCommands()

// rows are the rows of the table in the order of their IDs.
var rows = numberCommands(table)

// numberCommands gives each row of the command table its ID: 1, 2, ... in
// the order of the names. It returns the rows in that order.
func numberCommands(m map[string]*Command) []*Command {
	names := slices.Sorted(maps.Keys(m))
	byID := make([]*Command, len(names))
	for i, n := range names {
		m[n].ID = uint16(i + 1)
		byID[i] = m[n]
	}
	return byID
}

// Lookup finds a command by name, in any case, without allocating; nil
// when the table has no such command.
func Lookup(name []byte) *Command {
	var up [24]byte
	if len(name) > len(up) {
		return nil
	}
	for i, c := range name {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		up[i] = c
	}
	return table[string(up[:len(name)])]
}

// Len is the number of commands in the table (COMMAND COUNT's answer):
// their IDs are 1 to Len().
func Len() int { return len(table) }

// All yields the commands of the table in the order of their IDs.
func All() iter.Seq[*Command] { return slices.Values(rows) }
