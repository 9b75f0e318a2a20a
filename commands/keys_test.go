package commands

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// forwarded reports whether the proxy sends a command to its servers.
func forwarded(c *Command) bool {
	return c != nil && (c.Kind == Single || c.Kind == SameServer || c.Kind == Split) && !c.Channel
}

// keyProblem compares the keys the proxy routes a sample by with the keys
// the server finds in it, and describes the difference ("" when none). A
// problem starting "misrouted" is a key the proxy does not route by: a
// request that reaches a server other than the one holding that key.
func keyProblem(c *Command, s keySample) string {
	if s.err != "" {
		return "" // the server takes no such request
	}
	args := make([][]byte, len(s.args))
	for i, a := range s.args {
		args[i] = []byte(a)
	}
	if !c.ArityOK(len(args)) {
		return fmt.Sprintf("refused: proxy arity %d, server keys %q", c.Arity, s.keys)
	}
	got, err := c.Keys(nil, args)
	switch err {
	case KeysArity, KeysNumkeys, KeysSubcommand, KeysSubArity, KeysSyntax, KeysUnbalanced:
		return fmt.Sprintf("refused: keys error %d, server keys %q", err, s.keys)
	case KeysNone:
		if len(s.keys) > 0 {
			return fmt.Sprintf("misrouted: refused as keyless, server keys %q", s.keys)
		}
		return ""
	}
	proxy := make([]string, len(got))
	for i, k := range got {
		proxy[i] = string(k)
	}
	var missing, extra []string
	for _, k := range s.keys {
		if !slices.Contains(proxy, k) {
			missing = append(missing, k)
		}
	}
	for _, k := range proxy {
		if !slices.Contains(s.keys, k) {
			extra = append(extra, k)
		}
	}
	switch {
	case len(missing) > 0:
		return fmt.Sprintf("misrouted: not routed by %q (server keys %q, proxy keys %q)", missing, s.keys, proxy)
	case len(extra) > 0:
		return fmt.Sprintf("routed by %q, which are no keys (server keys %q, proxy keys %q)", extra, s.keys, proxy)
	case c.Kind == Single && len(proxy) != 1:
		return fmt.Sprintf("Single with keys %q", proxy)
	}
	return ""
}

// checkKeys compares every sample of every forwarded command with row(name)
// and returns the problems (at most three per command) and the commands
// with a key the proxy does not route by.
func checkKeys(o *commandOracle, row func(name string) *Command) (problems, misrouted []string) {
	names := make([]string, 0, len(o.samples))
	for name := range o.samples {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		c := row(name)
		if !forwarded(c) {
			continue
		}
		n := 0
		for _, s := range o.samples[name] {
			p := keyProblem(c, s)
			if p == "" {
				continue
			}
			if strings.HasPrefix(p, "misrouted") && !slices.Contains(misrouted, name) {
				misrouted = append(misrouted, name)
			}
			if n++; n <= 3 {
				problems = append(problems, fmt.Sprintf("%s: %s", strings.Join(s.args, " "), p))
			}
		}
	}
	return problems, misrouted
}

// tableRow is the proxy's row for a server command name ("object|freq"
// has OBJECT's row).
func tableRow(name string) *Command {
	return Lookup([]byte(strings.Split(name, "|")[0]))
}

// TestCommandKeysMatchServer checks that for every sample request of every
// command the proxy forwards, the keys it routes by are exactly the keys a
// real redis-server finds in the request (COMMAND GETKEYS): a key it missed
// would be read or written on a server that does not hold it.
func TestCommandKeysMatchServer(t *testing.T) {
	o := newCommandOracle(t)
	problems, misrouted := checkKeys(o, tableRow)
	for _, p := range problems {
		t.Error(p)
	}
	if len(misrouted) > 0 {
		t.Errorf("forwarded commands with keys the proxy does not route by: %s", strings.Join(misrouted, " "))
	}

	// The check itself finds a missing key: ZUNIONSTORE routed by its
	// sources only, as the table once had it.
	t.Run("catches a missing destination", func(t *testing.T) {
		bad := *table["ZUNIONSTORE"]
		bad.KeyAt, bad.LastKey = 0, 0
		_, misrouted := checkKeys(o, func(name string) *Command {
			if name == "zunionstore" {
				return &bad
			}
			return nil
		})
		if !slices.Equal(misrouted, []string{"zunionstore"}) {
			t.Errorf("misrouted %q, want zunionstore", misrouted)
		}
	})
}

// TestCommandKeysCoverServerCommands checks that every command with keys
// that a real redis-server knows, and that the proxy forwards, has a sample
// the server finds keys in, so TestCommandKeysMatchServer checked it: a
// command added to the table without one fails here. It also checks that
// every forwarded command is one the server knows.
func TestCommandKeysCoverServerCommands(t *testing.T) {
	o := newCommandOracle(t)
	checked := 0
	for name, sc := range o.cmds {
		if !sc.hasKeys || len(sc.subs) > 0 || !forwarded(tableRow(name)) {
			continue
		}
		covered := slices.ContainsFunc(o.samples[name], func(s keySample) bool { return s.err == "" && len(s.keys) > 0 })
		if !covered {
			t.Errorf("%s has keys and the proxy forwards it, but no sample has keys the server accepts: add one to extraKeySamples (samples: %q)",
				name, o.samples[name])
			continue
		}
		checked++
	}
	for name, c := range table {
		if !forwarded(c) {
			continue
		}
		sc := o.cmds[strings.ToLower(name)]
		switch {
		case sc == nil:
			t.Errorf("the proxy forwards %s, which the server does not know", name)
		case !sc.hasKeys && len(sc.subs) == 0:
			t.Errorf("the proxy forwards %s, which has no keys", name)
		}
	}
	if checked < 150 {
		t.Errorf("only %d forwarded commands with keys checked", checked)
	}
}

// TestCommandArityMatchesServer checks every forwarded command's arity in
// the table against the server's (COMMAND INFO). A command with
// subcommands (OBJECT) takes at least the arity of its subcommands with
// keys, and leaves the rest to the server, whose error names the
// subcommand.
func TestCommandArityMatchesServer(t *testing.T) {
	o := newCommandOracle(t)
	for name, c := range table {
		sc := o.cmds[strings.ToLower(name)]
		if !forwarded(c) || sc == nil {
			continue
		}
		if c.Subs != nil {
			checkSubArity(t, c, sc, o)
			continue
		}
		want := sc.arity
		for _, sub := range sc.subs {
			if !sub.hasKeys {
				continue
			}
			if a := -max(sub.arity, -sub.arity); want != sc.arity && want != a {
				t.Errorf("%s: subcommands with keys differ in arity: %s %d", name, sub.name, sub.arity)
			} else {
				want = a
			}
		}
		if c.Arity != want {
			t.Errorf("%s: arity %d in the table, the server's is %d", name, c.Arity, want)
		}
	}
}

// checkSubArity checks the arity of a row with subcommands, and of each of
// its subcommands, against the server's; and that every subcommand of the
// server has a row, so that none is taken for an unknown one.
func checkSubArity(t *testing.T, c *Command, sc *serverCommand, o *commandOracle) {
	t.Helper()
	if c.Arity != sc.arity {
		t.Errorf("%s: arity %d in the table, the server's is %d", c.Name, c.Arity, sc.arity)
	}
	for _, sub := range sc.subs {
		row := c.sub([]byte(sub.words[1]))
		switch {
		case row == nil:
			t.Errorf("%s: the server's subcommand %s has no row", c.Name, sub.name)
		case row.Arity != sub.arity:
			t.Errorf("%s: arity %d in the table, the server's is %d", sub.name, row.Arity, sub.arity)
		}
	}
	if len(c.Subs) != len(sc.subs) {
		t.Errorf("%s: %d subcommands in the table, the server has %d", c.Name, len(c.Subs), len(sc.subs))
	}
}

// TestCommandTableShape checks what the routing code takes for granted of
// the rows it forwards.
func TestCommandTableShape(t *testing.T) {
	for name, c := range table {
		need := -c.Arity
		if c.Arity > 0 {
			need = c.Arity
		}
		switch {
		case c.Arity == 0:
			t.Errorf("%s: no arity", name)
		case !forwarded(c):
		case c.KeyAt > 0 && c.Step < 1:
			t.Errorf("%s: step %d", name, c.Step)
		case c.LastKey >= need || c.NumkeysAt >= need || c.KeyAt >= need:
			t.Errorf("%s: a fixed key position beyond the arity %d", name, c.Arity)
		case c.Kind == Single && (c.KeyAt == 0 || c.LastKey != c.KeyAt || c.NumkeysAt != 0 || c.Opts != nil):
			t.Errorf("%s: Single routes by one key", name)
		case c.Kind == Split && (c.KeyAt != 1 || c.LastKey != -c.Step || c.NumkeysAt != 0 || c.Opts != nil || c.Merge == MergeNone):
			t.Errorf("%s: split assumes key-value groups from the first argument to the last", name)
		case c.Opts != nil && c.OptsAt < 1:
			t.Errorf("%s: options without a start", name)
		}
	}
}

// TestCommandKeysDoNotAllocate checks that finding a request's keys, the
// option scans included, allocates nothing once the key buffer has grown.
func TestCommandKeysDoNotAllocate(t *testing.T) {
	for _, req := range []string{
		"GET k",
		"MSET k1 v1 k2 v2",
		"ZUNIONSTORE dst 2 a b WEIGHTS 1 2",
		"EVAL s 2 a b arg",
		"sort src by w_* limit 0 5 get # store dst",
		"GEORADIUS src 15 37 200 km COUNT 1 STOREDIST dst",
		"XREAD COUNT 2 STREAMS a b 0 0",
		"xinfo stream s FULL",
		"LMPOP 2 a b LEFT",
	} {
		var args [][]byte
		for _, a := range strings.Fields(req) {
			args = append(args, []byte(a))
		}
		c := Lookup(args[0])
		dst := make([][]byte, 0, 8)
		allocs := testing.AllocsPerRun(100, func() {
			var err KeysErr
			dst, err = c.Keys(dst[:0], args)
			if err != KeysOK {
				t.Fatalf("%s: keys error %d", req, err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %.1f allocations", req, allocs)
		}
	}
}
