package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/shardproxy/shardproxy/config"
)

// reshardOptions are the command line of "shardproxy reshard".
type reshardOptions struct {
	plan       bool
	confFile   string
	pool       string
	sample     bool
	sampleKeys int
	synthetic  int

	stats       string
	interval    time.Duration
	timeout     time.Duration
	failOnError bool
}

const reshardUsage = `Usage: shardproxy reshard --plan -c new.yml [--pool NAME] [--sample=false] [--sample-keys N]
       shardproxy reshard --stats HOST:PORT[,HOST:PORT...] [-c new.yml] [--pool NAME]
                          [--interval 1s] [--timeout D] [--fail-on-error]

--plan prints what the migrations (migrate_from) of the file move: each server's share
of the keyspace before and after, the share each old owner hands to each new owner, the
slot table of jump pools as a slots: map, and, from keys sampled on the old owners, the
keys and bytes to move. --stats watches the proxies' stats ports until every proxy
reports migration_pending 0.

Options:
`

// parseReshardFlags reads the arguments after "reshard".
func parseReshardFlags(args []string, stderr io.Writer) (*reshardOptions, error) {
	o := &reshardOptions{}
	fs := flag.NewFlagSet("shardproxy reshard", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, reshardUsage)
		fs.PrintDefaults()
	}
	fs.BoolVar(&o.plan, "plan", false, "print what the file's migrations move, and exit")
	fs.StringVar(&o.confFile, "c", "", "configuration file (needed by --plan; with --stats, the proxies must run it)")
	fs.StringVar(&o.confFile, "conf-file", "", "same as -c")
	fs.StringVar(&o.pool, "pool", "", "only this pool (default: every pool with migrate_from)")
	fs.BoolVar(&o.sample, "sample", true, "--plan: sample keys on the old owners that answer")
	fs.IntVar(&o.sampleKeys, "sample-keys", 1000, "--plan: keys sampled per old owner")
	fs.IntVar(&o.synthetic, "synthetic-keys", 100000, "--plan: synthetic keys placed to estimate ketama and modula shares")
	fs.StringVar(&o.stats, "stats", "", "watch these proxies' stats ports (comma-separated host:port)")
	fs.DurationVar(&o.interval, "interval", time.Second, "--stats: time between two looks")
	fs.DurationVar(&o.timeout, "timeout", 0, "--stats: give up after this long (default: wait as long as it takes)")
	fs.BoolVar(&o.failOnError, "fail-on-error", false, "--stats: stop with an error once migration_errors rises")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.plan == (o.stats != ""):
		return nil, errors.New("give either --plan or --stats")
	case o.plan && o.confFile == "":
		return nil, errors.New("--plan needs the configuration file: -c new.yml")
	case o.sampleKeys < 1 || o.synthetic < 1:
		return nil, errors.New("--sample-keys and --synthetic-keys must be at least 1")
	case o.interval <= 0:
		return nil, fmt.Errorf("--interval must be above 0, not %v", o.interval)
	case o.timeout < 0:
		return nil, fmt.Errorf("--timeout must be 0 (none) or more, not %v", o.timeout)
	}
	return o, nil
}

// runReshard runs "shardproxy reshard" and returns the exit code.
func runReshard(args []string, stdout, stderr io.Writer) int {
	o, err := parseReshardFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "shardproxy reshard: %v\n", err)
		return 2
	}
	var cfg *config.Config
	if o.confFile != "" {
		if cfg, err = config.Load(o.confFile); err != nil {
			fmt.Fprintf(stderr, "shardproxy reshard: %v\n", err)
			return 1
		}
		if o.pool != "" && findPool(cfg, o.pool) == nil {
			fmt.Fprintf(stderr, "shardproxy reshard: %s has no pool %q\n", o.confFile, o.pool)
			return 1
		}
	}
	if o.plan {
		err = printPlan(cfg, o, stdout)
	} else {
		err = watchStats(cfg, o, splitAddrs(o.stats), stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "shardproxy reshard: %v\n", err)
		return 1
	}
	return 0
}

// findPool returns the pool of cfg named name, or nil.
func findPool(cfg *config.Config, name string) *config.Pool {
	for _, p := range cfg.Pools {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// migratingPools returns the pools of cfg with a migration (all of them
// when only is "", else the one named only, migration or not).
func migratingPools(cfg *config.Config, only string) []*config.Pool {
	var out []*config.Pool
	for _, p := range cfg.Pools {
		if (only == "" && p.MigrateFrom != nil) || p.Name == only {
			out = append(out, p)
		}
	}
	return out
}

// splitAddrs splits a comma-separated list of addresses, dropping empty
// items.
func splitAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}
