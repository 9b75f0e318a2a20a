package commands

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

// serverCommand is a command or subcommand as a real redis-server describes
// it (COMMAND INFO and COMMAND DOCS).
type serverCommand struct {
	name    string   // lower case; "object|encoding" for a subcommand
	words   []string // the request's leading arguments: "object", "encoding"
	arity   int      // counting words
	hasKeys bool     // a first key, key specs, or movable keys
	subs    []*serverCommand
	args    []docArg
}

// docArg is one argument of COMMAND DOCS.
type docArg struct {
	name, typ, token         string
	optional, multiple, mtok bool // mtok: the token repeats with each value
	args                     []docArg
}

// keySample is a concrete request and the keys the server finds in it.
type keySample struct {
	args []string
	keys []string // COMMAND GETKEYS
	err  string   // the server's error when it finds no keys in it
}

// commandOracle is what a real redis-server says about its commands and
// about the keys of sample requests of each.
type commandOracle struct {
	cmds    map[string]*serverCommand // by name, subcommands too
	samples map[string][]keySample    // by serverCommand.name
}

// extraKeySamples are hand-written requests for the forms where keys hide:
// options that name a destination, numkeys, keywords, subcommands. Samples
// of commands the proxy does not forward are kept, so that a command added
// to the table later is checked at once.
var extraKeySamples = [][]string{
	{"SORT", "src", "STORE", "dst"},
	{"sort", "src", "by", "w_*", "get", "#", "store", "dst"},
	{"SORT", "src", "LIMIT", "0", "5", "GET", "o_*", "ALPHA", "DESC", "STORE", "dst"},
	{"SORT", "src", "STORE", "dst1", "STORE", "dst2"},
	{"SORT", "src", "GET", "STORE", "STORE", "dst"},
	{"SORT", "src", "BY", "STORE"},
	{"SORT_RO", "src", "BY", "w_*", "GET", "#"},
	{"GEORADIUS", "src", "15", "37", "200", "km", "STORE", "dst"},
	{"GEORADIUS", "src", "15", "37", "200", "km", "COUNT", "2", "ANY", "STOREDIST", "dst"},
	{"georadius", "src", "15", "37", "200", "km", "storedist", "dst1", "store", "dst2"},
	{"GEORADIUS", "src", "15", "37", "200", "km", "WITHDIST", "ASC"},
	{"GEORADIUSBYMEMBER", "src", "member", "100", "km", "STORE", "dst"},
	{"GEORADIUSBYMEMBER", "src", "store", "100", "km", "STOREDIST", "dst"},
	{"GEORADIUS_RO", "src", "15", "37", "200", "km", "WITHCOORD"},
	{"GEOSEARCHSTORE", "dst", "src", "FROMMEMBER", "m", "BYRADIUS", "10", "km", "STOREDIST"},
	{"ZUNIONSTORE", "dst", "1", "src"},
	{"ZUNIONSTORE", "dst", "2", "src1", "src2", "WEIGHTS", "1", "2", "AGGREGATE", "MAX"},
	{"ZINTERSTORE", "dst", "2", "src1", "src2"},
	{"ZDIFFSTORE", "dst", "2", "src1", "src2"},
	{"ZRANGESTORE", "dst", "src", "0", "-1"},
	{"ZUNION", "2", "src1", "src2", "WITHSCORES"},
	{"ZINTERCARD", "2", "src1", "src2", "LIMIT", "1"},
	{"SINTERCARD", "2", "src1", "src2", "LIMIT", "1"},
	{"SINTERSTORE", "dst", "src1", "src2"},
	{"SUNIONSTORE", "dst", "src1"},
	{"SDIFFSTORE", "dst", "src1", "src2"},
	{"SMOVE", "src", "dst", "member"},
	{"LMOVE", "src", "dst", "LEFT", "RIGHT"},
	{"RPOPLPUSH", "src", "dst"},
	{"COPY", "src", "dst", "REPLACE"},
	{"RENAME", "src", "dst"},
	{"PFMERGE", "dst", "src1", "src2"},
	{"PFCOUNT", "src1", "src2"},
	{"BITOP", "AND", "dst", "src1", "src2"},
	{"BITOP", "NOT", "dst", "src"},
	{"MSETNX", "k1", "v1", "k2", "v2"},
	{"MSET", "k1", "v1", "k2", "v2"},
	{"LMPOP", "2", "src1", "src2", "LEFT", "COUNT", "2"},
	{"ZMPOP", "1", "src", "MIN"},
	{"BLMPOP", "0", "2", "src1", "src2", "LEFT"},
	{"BZMPOP", "0", "1", "src", "MAX"},
	{"EVAL", "return 1", "2", "k1", "k2", "arg"},
	{"EVAL_RO", "return 1", "1", "k1"},
	{"EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "1", "k1", "arg"},
	{"FCALL", "f", "2", "k1", "k2", "arg"},
	{"FCALL_RO", "f", "1", "k1"},
	{"XREAD", "COUNT", "2", "STREAMS", "s1", "s2", "0", "0"},
	{"XREADGROUP", "GROUP", "g", "c", "STREAMS", "s1", "0"},
	{"XREAD", "STREAMS", "STREAMS", "0"},
	{"XREADGROUP", "GROUP", "STREAMS", "c", "NOACK", "STREAMS", "s1", "0"},
	{"xread", "count", "2", "block", "0", "streams", "a", "b", "1", "2"},
	{"XINFO", "STREAM", "s", "FULL", "COUNT", "5"},
	{"XGROUP", "CREATE", "s", "g", "$", "MKSTREAM", "ENTRIESREAD", "3"},
	{"MEMORY", "USAGE", "k1"},
	{"MIGRATE", "127.0.0.1", "6379", "k1", "0", "1000"},
	{"MIGRATE", "127.0.0.1", "6379", "", "0", "1000", "COPY", "KEYS", "k1", "k2"},
	{"OBJECT", "ENCODING", "k1"},
	{"OBJECT", "FREQ", "k1"},
	{"MEMORY", "USAGE", "k1", "SAMPLES", "5"},
	{"SET", "k1", "v", "GET", "EX", "10"},
	{"RESTORE", "k1", "0", "payload", "REPLACE"},
}

// newCommandOracle starts a redis-server, reads its commands, and asks it
// for the keys of samples of every command: generated from COMMAND DOCS
// (with and without the optional arguments, one and two of each repeated
// one, every branch of a choice) and the hand-written extraKeySamples.
func newCommandOracle(t *testing.T) *commandOracle {
	t.Helper()
	srv := testservers.Redis(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o := &commandOracle{cmds: map[string]*serverCommand{}, samples: map[string][]keySample{}}
	info, err := c.Do(ctx, "COMMAND").Slice()
	if err != nil {
		t.Fatalf("COMMAND: %v", err)
	}
	for _, e := range info {
		o.addInfo(e.([]any))
	}
	docs, err := c.Do(ctx, "COMMAND", "DOCS").Slice()
	if err != nil {
		t.Fatalf("COMMAND DOCS: %v", err)
	}
	for i := 0; i+1 < len(docs); i += 2 {
		o.addDocs(docs[i].(string), pairs(docs[i+1]))
	}
	seen := map[string]bool{}
	ask := func(args []string) {
		if seen[strings.Join(args, "\x00")] {
			return
		}
		seen[strings.Join(args, "\x00")] = true
		s := keySample{args: args}
		q := []any{"COMMAND", "GETKEYS"}
		for _, a := range args {
			q = append(q, a)
		}
		s.keys, err = c.Do(ctx, q...).StringSlice()
		if err != nil {
			s.err = err.Error()
		}
		name := o.nameOf(args)
		o.samples[name] = append(o.samples[name], s)
	}
	for _, sc := range o.cmds {
		for _, args := range generateSamples(sc) {
			ask(args)
		}
	}
	for _, args := range extraKeySamples {
		ask(args)
	}
	return o
}

// addInfo records one entry of COMMAND's reply and its subcommands.
func (o *commandOracle) addInfo(e []any) *serverCommand {
	name := e[0].(string)
	sc := &serverCommand{name: name, arity: int(e[1].(int64)), words: strings.Split(name, "|")}
	for _, f := range e[2].([]any) {
		if f == "movablekeys" {
			sc.hasKeys = true
		}
	}
	if e[3].(int64) != 0 || len(e[8].([]any)) > 0 {
		sc.hasKeys = true
	}
	for _, s := range e[9].([]any) {
		sc.subs = append(sc.subs, o.addInfo(s.([]any)))
	}
	o.cmds[name] = sc
	return sc
}

// addDocs records the arguments of one command of COMMAND DOCS and its
// subcommands.
func (o *commandOracle) addDocs(name string, d map[string]any) {
	if sc := o.cmds[name]; sc != nil {
		if a, ok := d["arguments"].([]any); ok {
			sc.args = parseDocArgs(a)
		}
	}
	if subs, ok := d["subcommands"].([]any); ok {
		for i := 0; i+1 < len(subs); i += 2 {
			o.addDocs(subs[i].(string), pairs(subs[i+1]))
		}
	}
}

// nameOf returns the server's name of the command a request calls.
func (o *commandOracle) nameOf(args []string) string {
	name := strings.ToLower(args[0])
	if sc := o.cmds[name]; sc != nil && len(sc.subs) > 0 && len(args) > 1 {
		return name + "|" + strings.ToLower(args[1])
	}
	return name
}

// pairs turns a RESP2 flat map into a map.
func pairs(v any) map[string]any {
	m := map[string]any{}
	a, _ := v.([]any)
	for i := 0; i+1 < len(a); i += 2 {
		m[fmt.Sprint(a[i])] = a[i+1]
	}
	return m
}

func parseDocArgs(list []any) []docArg {
	var out []docArg
	for _, v := range list {
		m := pairs(v)
		a := docArg{name: fmt.Sprint(m["name"]), typ: fmt.Sprint(m["type"])}
		if tok, ok := m["token"].(string); ok {
			a.token = tok
		}
		flags, _ := m["flags"].([]any)
		for _, f := range flags {
			switch f {
			case "optional":
				a.optional = true
			case "multiple":
				a.multiple = true
			case "multiple_token":
				a.mtok = true
			}
		}
		if sub, ok := m["arguments"].([]any); ok {
			a.args = parseDocArgs(sub)
		}
		out = append(out, a)
	}
	return out
}

// genMode is one way to fill in a command's arguments.
type genMode struct {
	all    bool // every optional argument
	only   int  // else only the top-level optional argument at this index (-1: none)
	reps   int  // values of a repeated argument
	choice int  // branch of every choice, modulo its branches
}

// generateSamples makes requests of sc from its documented arguments.
// Values are distinct (key1, str2, ...) so that a key taken from the wrong
// position shows; a numkeys argument counts the keys that follow it.
func generateSamples(sc *serverCommand) [][]string {
	if len(sc.subs) > 0 {
		return nil
	}
	branches := maxBranches(sc.args)
	var modes []genMode
	for _, reps := range []int{1, 2} {
		for _, all := range []bool{false, true} {
			for c := 0; c < branches; c++ {
				modes = append(modes, genMode{all: all, only: -1, reps: reps, choice: c})
			}
		}
	}
	for i, a := range sc.args {
		if a.optional {
			for c := 0; c < branches; c++ {
				modes = append(modes, genMode{only: i, reps: 1, choice: c})
			}
		}
	}
	var out [][]string
	for _, m := range modes {
		g := &sampleGen{mode: m}
		for _, w := range sc.words {
			g.out = append(g.out, strings.ToUpper(w))
		}
		g.seq(sc.args, true)
		out = append(out, g.out)
	}
	return out
}

func maxBranches(args []docArg) int {
	n := 1
	for _, a := range args {
		if a.typ == "oneof" {
			n = max(n, len(a.args))
		}
		n = max(n, maxBranches(a.args))
	}
	return n
}

type sampleGen struct {
	mode  genMode
	n     int // values made, for distinct names
	nkeys int // keys made
	out   []string
}

// seq appends a sequence of arguments.
func (g *sampleGen) seq(args []docArg, top bool) {
	numkeys, keysBefore := -1, 0
	for i, a := range args {
		if a.optional && !g.mode.all && !(top && i == g.mode.only) {
			continue
		}
		if numkeys >= 0 {
			g.arg(a)
			g.out[numkeys] = strconv.Itoa(g.nkeys - keysBefore)
			numkeys = -1
			continue
		}
		if a.typ == "integer" && a.name == "numkeys" {
			numkeys, keysBefore = len(g.out), g.nkeys
			g.out = append(g.out, "0")
			continue
		}
		g.arg(a)
	}
}

// arg appends one argument, repeated when it is multiple.
func (g *sampleGen) arg(a docArg) {
	reps := 1
	if a.multiple {
		reps = g.mode.reps
	}
	for r := 0; r < reps; r++ {
		if a.token != "" && (r == 0 || a.mtok) {
			g.out = append(g.out, a.token)
		}
		g.value(a)
	}
}

func (g *sampleGen) value(a docArg) {
	g.n++
	switch a.typ {
	case "pure-token":
	case "key":
		g.nkeys++
		g.out = append(g.out, fmt.Sprintf("key%d", g.n))
	case "string":
		g.out = append(g.out, fmt.Sprintf("str%d", g.n))
	case "pattern":
		g.out = append(g.out, fmt.Sprintf("pat%d*", g.n))
	case "integer":
		g.out = append(g.out, "1")
	case "double":
		g.out = append(g.out, "1.5")
	case "unix-time":
		g.out = append(g.out, "1700000000")
	case "oneof":
		if len(a.args) > 0 {
			g.arg(a.args[g.mode.choice%len(a.args)])
		}
	case "block":
		g.seq(a.args, false)
	default:
		g.out = append(g.out, fmt.Sprintf("val%d", g.n))
	}
}
