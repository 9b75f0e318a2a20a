package proxy

import (
	"fmt"
	"strings"

	"github.com/shardproxy/shardproxy/codec/resp"
)

// The rows of the command table whose keys no fixed position gives: the
// stream commands with subcommands (XINFO, XGROUP), MEMORY USAGE, and
// XREAD and XREADGROUP, whose keys follow their STREAMS option.

// addStreams adds those rows to the table through add.
func addStreams(add func(c command, names string)) {
	key2 := func(arity int, name string) command {
		return command{name: name, kind: kindSingle, arity: arity, keyAt: 2, lastKey: 2, step: 1}
	}
	keyless := func(arity int, name string) command { return command{name: name, kind: kindSingle, arity: arity} }
	add(command{kind: kindSameServer, arity: -2, subs: []command{
		key2(-3, "STREAM"), key2(3, "GROUPS"), key2(4, "CONSUMERS"), keyless(2, "HELP"),
	}}, "XINFO")
	add(command{kind: kindSameServer, arity: -2, subs: []command{
		key2(-5, "CREATE"), key2(4, "DESTROY"), key2(5, "CREATECONSUMER"), key2(5, "DELCONSUMER"),
		key2(-5, "SETID"), keyless(2, "HELP"),
	}}, "XGROUP")
	// MEMORY's other subcommands are about the server, not a key.
	add(command{kind: kindSameServer, arity: -2, subs: []command{
		key2(-3, "USAGE"), keyless(2, "DOCTOR"), keyless(2, "STATS"), keyless(2, "MALLOC-STATS"),
		keyless(2, "PURGE"), keyless(2, "HELP"),
	}}, "MEMORY")
	add(command{kind: kindSameServer, arity: -4, keysFunc: readStreamKeys}, "XREAD")
	add(command{kind: kindSameServer, arity: -7, keysFunc: readStreamKeys}, "XREADGROUP")
}

// subKeys appends the keys of a request of a command with subcommands: its
// subcommand's (args[1]; the command's arity makes sure it is there).
func (c *command) subKeys(dst, args [][]byte) ([][]byte, keysErr) {
	sub := c.sub(args[1])
	switch {
	case sub == nil:
		return dst, keysSubcommand
	case !sub.arityOK(len(args)):
		return dst, keysSubArity
	case sub.keyAt == 0:
		return dst, keysNone
	}
	return sub.keys(dst, args)
}

// sub finds the subcommand named arg, in any case.
func (c *command) sub(arg []byte) *command {
	for i := range c.subs {
		if upperEqual(c.subs[i].name, arg) {
			return &c.subs[i]
		}
	}
	return nil
}

// readStreamKeys is XREAD's and XREADGROUP's keysFunc: their keys, and
// keysBlocking when the request has a BLOCK option.
func readStreamKeys(dst, args [][]byte) ([][]byte, keysErr) {
	dst, block, err := streamKeys(dst, args)
	if err == keysOK && block > 0 {
		return dst, keysBlocking
	}
	return dst, err
}

// streamKeys appends the keys of an XREAD or XREADGROUP request to dst, as
// the server finds them (its xreadGetKeys): the options are read up to
// STREAMS, whose arguments are as many keys as IDs after them. block is
// the index of BLOCK's timeout argument, 0 when the request does not
// block. The error is keysSyntax when no STREAMS option is where the
// server looks for it, keysUnbalanced when the keys and IDs do not pair
// up; the server answers both with an error and reads nothing.
func streamKeys(dst, args [][]byte) (_ [][]byte, block int, err keysErr) {
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
			return dst, 0, keysSyntax
		}
	}
	n := len(args) - at - 1
	switch {
	case at < 0 || n == 0:
		return dst, 0, keysSyntax
	case n%2 != 0:
		return dst, 0, keysUnbalanced
	}
	if block >= len(args) {
		block = 0
	}
	return append(dst, args[at+1:at+1+n/2]...), block, keysOK
}

// keysError words the error of a request whose keys could not be found
// (err is not keysOK), as the server words it where it has one.
func (c *command) keysError(err keysErr, args [][]byte) string {
	name := strings.ToLower(c.name)
	switch err {
	case keysArity:
		return wrongArgs(args[0])
	case keysNumkeys:
		return "ERR numkeys is not a valid count of the keys that follow"
	case keysSubcommand:
		return fmt.Sprintf("ERR unknown subcommand '%s'. Try %s HELP.", resp.Clip(args[1]), strings.ToUpper(resp.Clip(args[0])))
	case keysSubArity:
		return fmt.Sprintf("ERR wrong number of arguments for '%s|%s' command", name, strings.ToLower(c.sub(args[1]).name))
	case keysSyntax:
		return "ERR syntax error"
	case keysUnbalanced:
		return "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."
	}
	if c.subs != nil {
		name += " " + strings.ToLower(c.sub(args[1]).name)
	}
	return fmt.Sprintf("ERR '%s' without keys cannot be routed by the proxy", name)
}
