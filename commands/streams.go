package commands

import (
	"fmt"
	"strings"

	"github.com/shardproxy/shardproxy/codec/resp"
)

// The rows of the command table whose keys no fixed position gives: the
// stream commands with subcommands (XINFO, XGROUP), MEMORY USAGE, and
// XREAD and XREADGROUP, whose keys follow their STREAMS option.

// addStreams adds those rows to the table through add.
func addStreams(add func(c Command, names string)) {
	key2 := func(arity int, name string) Command {
		return Command{Name: name, Kind: Single, Arity: arity, KeyAt: 2, LastKey: 2, Step: 1}
	}
	keyless := func(arity int, name string) Command { return Command{Name: name, Kind: Single, Arity: arity} }
	add(Command{Kind: SameServer, Arity: -2, Subs: []Command{
		key2(-3, "STREAM"), key2(3, "GROUPS"), key2(4, "CONSUMERS"), keyless(2, "HELP"),
	}}, "XINFO")
	add(Command{Kind: SameServer, Arity: -2, Subs: []Command{
		key2(-5, "CREATE"), key2(4, "DESTROY"), key2(5, "CREATECONSUMER"), key2(5, "DELCONSUMER"),
		key2(-5, "SETID"), keyless(2, "HELP"),
	}}, "XGROUP")
	// MEMORY's other subcommands are about the server, not a key.
	add(Command{Kind: SameServer, Arity: -2, Subs: []Command{
		key2(-3, "USAGE"), keyless(2, "DOCTOR"), keyless(2, "STATS"), keyless(2, "MALLOC-STATS"),
		keyless(2, "PURGE"), keyless(2, "HELP"),
	}}, "MEMORY")
	add(Command{Kind: SameServer, Arity: -4, keysFunc: readStreamKeys}, "XREAD")
	add(Command{Kind: SameServer, Arity: -7, keysFunc: readStreamKeys}, "XREADGROUP")
}

// subKeys appends the keys of a request of a command with subcommands: its
// subcommand's (args[1]; the command's arity makes sure it is there).
func (c *Command) subKeys(dst, args [][]byte) ([][]byte, KeysErr) {
	sub := c.sub(args[1])
	switch {
	case sub == nil:
		return dst, KeysSubcommand
	case !sub.ArityOK(len(args)):
		return dst, KeysSubArity
	case sub.KeyAt == 0:
		return dst, KeysNone
	}
	return sub.Keys(dst, args)
}

// sub finds the subcommand named arg, in any case.
func (c *Command) sub(arg []byte) *Command {
	for i := range c.Subs {
		if upperEqual(c.Subs[i].Name, arg) {
			return &c.Subs[i]
		}
	}
	return nil
}

// readStreamKeys is XREAD's and XREADGROUP's keysFunc: their keys, and
// KeysBlocking when the request has a BLOCK option.
func readStreamKeys(dst, args [][]byte) ([][]byte, KeysErr) {
	dst, block, err := streamKeys(dst, args)
	if err == KeysOK && block > 0 {
		return dst, KeysBlocking
	}
	return dst, err
}

// streamKeys appends the keys of an XREAD or XREADGROUP request to dst, as
// the server finds them (its xreadGetKeys): the options are read up to
// STREAMS, whose arguments are as many keys as IDs after them. block is
// the index of BLOCK's timeout argument, 0 when the request does not
// block. The error is KeysSyntax when no STREAMS option is where the
// server looks for it, KeysUnbalanced when the keys and IDs do not pair
// up; the server answers both with an error and reads nothing.
func streamKeys(dst, args [][]byte) (_ [][]byte, block int, err KeysErr) {
	at := -1
	for i := 1; i < len(args) && at < 0; i++ {
		switch a := args[i]; {
		case upperEqual("BLOCK", a):
			block = i + 1
			i++
		case upperEqual("COUNT", a):
			i++
		case upperEqual("GROUP", a):
			i += 2
		case upperEqual("NOACK", a):
		case upperEqual("STREAMS", a):
			at = i
		default:
			return dst, 0, KeysSyntax
		}
	}
	n := len(args) - at - 1
	switch {
	case at < 0 || n == 0:
		return dst, 0, KeysSyntax
	case n%2 != 0:
		return dst, 0, KeysUnbalanced
	}
	if block >= len(args) {
		block = 0
	}
	return append(dst, args[at+1:at+1+n/2]...), block, KeysOK
}

// BlockingRead reports whether a request of c is an XREAD or XREADGROUP
// with a BLOCK option: it may block, so it runs in a batch of its own.
func (c *Command) BlockingRead(args [][]byte) bool {
	if c.keysFunc == nil {
		return false
	}
	_, block, _ := streamKeys(nil, args)
	return block > 0
}

// KeysError words the error of a request whose keys could not be found
// (err is not KeysOK), as the server words it where it has one.
func (c *Command) KeysError(err KeysErr, args [][]byte) string {
	name := strings.ToLower(c.Name)
	switch err {
	case KeysArity:
		return ArityError(args[0])
	case KeysNumkeys:
		return "ERR numkeys is not a valid count of the keys that follow"
	case KeysSubcommand:
		return fmt.Sprintf("ERR unknown subcommand '%s'. Try %s HELP.", resp.Clip(args[1]), strings.ToUpper(resp.Clip(args[0])))
	case KeysSubArity:
		return fmt.Sprintf("ERR wrong number of arguments for '%s|%s' command", name, strings.ToLower(c.sub(args[1]).Name))
	case KeysSyntax:
		return "ERR syntax error"
	case KeysUnbalanced:
		return "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."
	}
	if c.Subs != nil {
		name += " " + strings.ToLower(c.sub(args[1]).Name)
	}
	return fmt.Sprintf("ERR '%s' without keys cannot be routed by the proxy", name)
}
