package commands

import (
	"fmt"
	"strings"

	"github.com/shardproxy/shardproxy/codec/resp"
)

// KeysErr says why a request's keys could not be found (Command.Keys).
type KeysErr uint8

// The outcomes of Command.Keys.
const (
	KeysOK         KeysErr = iota
	KeysArity              // the fixed range does not fit the arguments
	KeysNumkeys            // numkeys is not a count of the arguments that follow it
	KeysNone               // the request names no key (EVAL with numkeys 0)
	KeysSubcommand         // no such subcommand (XINFO FOO)
	KeysSubArity           // the subcommand's arity does not fit
	KeysSyntax             // XREAD without a STREAMS option where the server looks for it
	KeysUnbalanced         // XREAD's STREAMS not followed by as many IDs as keys
	// KeysBlocking: XREAD or XREADGROUP with BLOCK, whose keys are
	// found all the same.
	KeysBlocking
)

// ArityOK reports whether a request of n arguments (with the name) has the
// number of arguments the server takes.
func (c *Command) ArityOK(n int) bool {
	if c.Arity < 0 {
		return n >= -c.Arity
	}
	return n == c.Arity
}

// ArityError is the server's error for a request of the command name (as
// the client sent it) with a wrong number of arguments.
func ArityError(name []byte) string {
	return fmt.Sprintf("ERR wrong number of arguments for '%s' command", strings.ToLower(resp.Clip(name)))
}

// Keys appends the keys of a request to dst: those the server finds in it
// (COMMAND GETKEYS) and so writes or reads. args has as many arguments as
// c.Arity asks.
func (c *Command) Keys(dst, args [][]byte) ([][]byte, KeysErr) {
	switch {
	case c.Subs != nil:
		return c.subKeys(dst, args)
	case c.keysFunc != nil:
		return c.keysFunc(dst, args)
	}
	start := len(dst)
	if c.KeyAt > 0 {
		last := c.LastKey
		if last < 0 {
			last += len(args)
		}
		if last < c.KeyAt || last >= len(args) || (last-c.KeyAt)%c.Step != 0 {
			return dst, KeysArity
		}
		for i := c.KeyAt; i <= last; i += c.Step {
			dst = append(dst, args[i])
		}
	}
	if c.NumkeysAt > 0 {
		n, ok := parseCount(args[c.NumkeysAt])
		first := c.NumkeysAt + 1
		if !ok || n > len(args)-first {
			return dst, KeysNumkeys
		}
		dst = append(dst, args[first:first+n]...)
	}
	if c.Opts != nil {
		dst = c.optionKeys(dst, args)
	}
	if len(dst) == start {
		return dst, KeysNone
	}
	return dst, KeysOK
}

// optionKeys appends the keys named by the options from c.OptsAt on, parsed
// as the server parses them: an option takes its arguments only when they
// are there. An argument that is no option (the server refuses the request
// with a syntax error, writing nothing) is passed over like an option
// without arguments, as the server's own sortGetKeys does, so that an
// option of a newer server cannot hide a STORE after it.
func (c *Command) optionKeys(dst, args [][]byte) [][]byte {
	lastAt := -1 // dst index of the key of a "last" option
	for i := c.OptsAt; i < len(args); {
		o := c.option(args[i], len(args)-i-1)
		switch {
		case o == nil:
			i++
			continue
		case o.Key && o.Last && lastAt >= 0:
			dst[lastAt] = args[i+1]
		case o.Key && o.Last:
			lastAt = len(dst)
			dst = append(dst, args[i+1])
		case o.Key:
			dst = append(dst, args[i+1])
		}
		i += 1 + o.Args
	}
	return dst
}

// option finds the option named arg, in any case, that takes at most left
// arguments.
func (c *Command) option(arg []byte, left int) *KeyOption {
	for i := range c.Opts {
		o := &c.Opts[i]
		if o.Args <= left && upperEqual(o.Name, arg) {
			return o
		}
	}
	return nil
}

// upperEqual reports whether b is the upper-case ASCII name in any case, as
// the server's strcasecmp compares, without allocating.
func upperEqual(name string, b []byte) bool {
	if len(name) != len(b) {
		return false
	}
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != name[i] {
			return false
		}
	}
	return true
}

// parseCount parses a small non-negative decimal.
func parseCount(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	v := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}
