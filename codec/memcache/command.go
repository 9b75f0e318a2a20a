package memcache

// Command identifies a request's command. The zero value is CmdUnknown.
type Command uint8

// Commands of the text protocol the codec models. Meta commands (mg, ms, md,
// ma, mn) have their key as the second token; ms also has a data block whose
// length is its third token.
const (
	CmdUnknown Command = iota
	CmdGet
	CmdGets
	CmdGat
	CmdGats
	CmdSet
	CmdAdd
	CmdReplace
	CmdAppend
	CmdPrepend
	CmdCas
	CmdDelete
	CmdIncr
	CmdDecr
	CmdTouch
	CmdVersion
	CmdQuit
	CmdVerbosity
	CmdFlushAll
	CmdStats
	CmdMg
	CmdMs
	CmdMd
	CmdMa
	CmdMn
	numCommands
)

// attr is a set of properties of a command.
type attr uint8

const (
	attrRetrieval attr = 1 << iota // get gets gat gats: VALUE blocks up to END
	attrStorage                    // a data block follows the line
	attrMeta                       // mg ms md ma mn
	attrNoReply                    // takes a trailing "noreply"
	attrExptime                    // gat gats: the exptime precedes the keys
)

// spec is how memcached 1.6 checks one command's line before it looks at the
// arguments: with too few or too many tokens it answers "ERROR".
type spec struct {
	name   string
	minTok int // fewest tokens, the command's own included
	maxTok int // most tokens; 0 means no bound
	attrs  attr
}

// specs is the command table, indexed by Command. Token bounds are those of
// memcached's WANT_TOKENS checks.
var specs = [numCommands]spec{
	CmdUnknown:   {name: "unknown"},
	CmdGet:       {"get", 2, 0, attrRetrieval},
	CmdGets:      {"gets", 2, 0, attrRetrieval},
	CmdGat:       {"gat", 2, 0, attrRetrieval | attrExptime},
	CmdGats:      {"gats", 2, 0, attrRetrieval | attrExptime},
	CmdSet:       {"set", 5, 6, attrStorage | attrNoReply},
	CmdAdd:       {"add", 5, 6, attrStorage | attrNoReply},
	CmdReplace:   {"replace", 5, 6, attrStorage | attrNoReply},
	CmdAppend:    {"append", 5, 6, attrStorage | attrNoReply},
	CmdPrepend:   {"prepend", 5, 6, attrStorage | attrNoReply},
	CmdCas:       {"cas", 6, 7, attrStorage | attrNoReply},
	CmdDelete:    {"delete", 2, 4, attrNoReply},
	CmdIncr:      {"incr", 3, 4, attrNoReply},
	CmdDecr:      {"decr", 3, 4, attrNoReply},
	CmdTouch:     {"touch", 3, 4, attrNoReply},
	CmdVersion:   {"version", 1, 0, 0},
	CmdQuit:      {"quit", 1, 0, 0},
	CmdVerbosity: {"verbosity", 2, 3, attrNoReply},
	CmdFlushAll:  {"flush_all", 1, 3, attrNoReply},
	CmdStats:     {"stats", 1, 0, 0},
	CmdMg:        {"mg", 2, 0, attrMeta},
	CmdMs:        {"ms", 2, 0, attrMeta | attrStorage},
	CmdMd:        {"md", 2, 0, attrMeta},
	CmdMa:        {"ma", 2, 0, attrMeta},
	CmdMn:        {"mn", 1, 0, attrMeta},
}

// commandByName maps a command's name to its Command.
var commandByName = func() map[string]Command {
	m := make(map[string]Command, numCommands)
	for c := CmdUnknown + 1; c < numCommands; c++ {
		m[specs[c].name] = c
	}
	return m
}()

// lookup returns the command named name, or CmdUnknown.
func lookup(name []byte) Command {
	return commandByName[string(name)] // no allocation: map index by converted bytes
}

// String returns the command's name as the protocol spells it ("get",
// "flush_all", "mg"), or "unknown".
func (c Command) String() string {
	if c >= numCommands {
		return specs[CmdUnknown].name
	}
	return specs[c].name
}

// has reports whether c has all properties in a.
func (c Command) has(a attr) bool { return c < numCommands && specs[c].attrs&a == a }

// Retrieval reports whether c is get, gets, gat or gats, answered by VALUE
// blocks and END.
func (c Command) Retrieval() bool { return c.has(attrRetrieval) }

// Storage reports whether c carries a data block: set, add, replace, append,
// prepend, cas and ms.
func (c Command) Storage() bool { return c.has(attrStorage) }

// Meta reports whether c is one of the meta commands mg, ms, md, ma, mn.
func (c Command) Meta() bool { return c.has(attrMeta) }
