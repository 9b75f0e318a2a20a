//go:build linux

// Command bench measures direct Redis/memcached, nutcracker and shardproxy
// side by side in one run and prints Markdown tables of throughput, latency,
// proxy CPU per request and memory per idle connection, with ratios. Only the
// ratios mean much: the absolute figures move with the machine's noise.
//
// Run it from the module root: go run ./bench [-quick] [-n N] [-sections ...]
// [-proxy-bin path] [-out file.md]. See bench/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// options are the command-line settings.
type options struct {
	n             int
	rounds        int
	conns         int
	settle        time.Duration // pause before reading a proxy's RSS
	quick         bool
	sections      map[string]bool
	proxyBin      string
	proxyBuilt    bool     // proxyBin was built from ./cmd/shardproxy by this run
	proxyFlags    []string // flags proxyBin runs with besides the config's: -T 1 for shardproxy
	proxyRESP3    bool     // proxyBin is shardproxy, which RESP3 rows go through (a nutcracker stand-in is not)
	proxyApps     bool     // proxyBin is shardproxy, which the apps rows go through (pub/sub, blocking commands)
	nutcrackerBin string
	out           string
}

// sectionOrder runs idle first, while both proxies are fresh: what a proxy
// keeps from earlier sections (nutcracker's buffer free lists) would hide
// what idle connections cost. reshard starts servers and a proxy of its
// own. apps comes after every section it was added to; cluster starts a
// Redis Cluster and a proxy of its own; fleet, which starts 256
// redis-servers and both proxies of its own and stops them at its end,
// runs last.
var sectionOrder = []string{"idle", "redis", "memcache", "large", "reshard", "apps", "cluster", "fleet"}

// optInSections run only when -sections names them (or says all): fleet
// starts 256 redis-servers and adds about three minutes to the run.
var optInSections = map[string]bool{"fleet": true}

// defaultSections are the sections run when -sections is not given.
func defaultSections() []string {
	return slices.DeleteFunc(slices.Clone(sectionOrder), func(s string) bool { return optInSections[s] })
}

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	o := &options{}
	fs.IntVar(&o.n, "n", 60000, "requests per run (large-value runs use n/10 and n/50)")
	fs.IntVar(&o.rounds, "rounds", 3, "runs per target and row; the table shows medians")
	fs.IntVar(&o.conns, "conns", 10000, "idle client connections per proxy")
	fs.BoolVar(&o.quick, "quick", false, "smoke run: small -n, one row per section")
	sections := fs.String("sections", strings.Join(defaultSections(), ","),
		"sections to run, of "+strings.Join(sectionOrder, ",")+", or all")
	fs.StringVar(&o.proxyBin, "proxy-bin", "", "shardproxy binary (default: go build ./cmd/shardproxy)")
	fs.StringVar(&o.nutcrackerBin, "nutcracker-bin", "nutcracker", "nutcracker binary")
	fs.StringVar(&o.out, "out", "", "also write the report to this Markdown file")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.quick && !set["n"] {
		o.n = 2000
	}
	if o.quick && !set["conns"] {
		o.conns = 1000
	}
	if o.quick && !set["rounds"] {
		o.rounds = 1
	}
	o.settle = 3 * time.Second
	if o.quick {
		o.settle = 200 * time.Millisecond
	}
	if o.n < 100 || o.conns < 1 || o.rounds < 1 {
		return nil, fmt.Errorf("-n must be at least 100, -conns and -rounds at least 1 (got %d, %d, %d)", o.n, o.conns, o.rounds)
	}
	o.sections = map[string]bool{}
	for _, s := range strings.Split(*sections, ",") {
		switch {
		case s == "all":
			for _, s := range sectionOrder {
				o.sections[s] = true
			}
		case slices.Contains(sectionOrder, s):
			o.sections[s] = true
		default:
			return nil, fmt.Errorf("unknown section %q (want %s, or all)", s, strings.Join(sectionOrder, ","))
		}
	}
	return o, nil
}

func main() { os.Exit(run()) }

// run does the whole benchmark and returns the exit status.
func run() int {
	if len(os.Args) == 4 && os.Args[1] == hopCommand {
		fmt.Fprintln(os.Stderr, "bench hop:", runHop(os.Args[2], os.Args[3]))
		return 1
	}
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p, err := newProcs()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	defer p.stopAll()
	b := &bench{ctx: ctx, o: o, out: os.Stdout}
	if err := b.prepare(p); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	err = b.runSections()
	if err == nil {
		err = b.writeOut()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
	}
	if len(b.failures) > 0 {
		fmt.Fprintf(os.Stderr, "bench: %d failed runs:\n  %s\n", len(b.failures), strings.Join(b.failures, "\n  "))
	}
	if err != nil || len(b.failures) > 0 {
		return 1
	}
	return 0
}

// bench holds one benchmark run's state.
type bench struct {
	ctx      context.Context
	o        *options
	procs    *procs // the children, for sections that start their own
	cl       *cluster
	out      io.Writer // where the report is printed as it is made
	report   strings.Builder
	failures []string
	results  results
}

// prepare builds shardproxy if needed, raises the file limit and starts all
// servers the comparison sections need (none for reshard alone).
func (b *bench) prepare(p *procs) error {
	b.procs = p
	if b.o.proxyBin == "" {
		b.progress("building ./cmd/shardproxy")
		bin, err := buildProxy(b.ctx, p.dir)
		if err != nil {
			return err
		}
		b.o.proxyBin, b.o.proxyBuilt = bin, true
	}
	b.o.proxyFlags = proxyFlags(b.o.proxyBin)
	b.o.proxyRESP3 = isShardproxy(b.o.proxyBin)
	b.o.proxyApps = b.o.proxyRESP3
	nc, err := lookPath(b.o.nutcrackerBin)
	if err != nil {
		return err
	}
	b.o.nutcrackerBin = nc
	limit, err := raiseNoFile(uint64(b.o.conns) + 4096)
	if err != nil {
		return err
	}
	if limit < uint64(b.o.conns)+100 {
		return fmt.Errorf("open file limit %d is too low for -conns %d", limit, b.o.conns)
	}
	b.cl = &cluster{}
	if b.o.sections["idle"] || b.o.sections["redis"] || b.o.sections["memcache"] || b.o.sections["large"] || b.o.sections["apps"] {
		if b.cl, err = setup(b.ctx, p, b.o); err != nil {
			return err
		}
	}
	b.emit(header(b.o))
	return nil
}

// runSections runs the chosen sections in a fixed order.
func (b *bench) runSections() error {
	for _, s := range sectionOrder {
		if !b.o.sections[s] {
			continue
		}
		if err := b.ctx.Err(); err != nil {
			return err
		}
		var text string
		var err error
		switch s {
		case "redis":
			ep := b.cl.redisEndpoints()
			ep.addr[hop] = b.cl.hop
			text, err = b.redisSection(s, "Redis: redis-benchmark -c 50 -r 1000000", redisCases(b.o.n, b.o.quick), ep)
			if err == nil {
				b.emit(text)
				text, err = b.resp3Section("Redis RESP3: redis-benchmark -3 -c 50 -r 1000000 (HELLO 3 on each connection)",
					resp3Cases(b.o.n, b.o.quick))
			}
		case "memcache":
			text, err = b.memcacheSection(fmt.Sprintf("Memcache: memcslap --concurrency=%d", memcslapClients))
		case "idle":
			text, err = b.idleSection("Idle client connections (one PING each)")
		case "large":
			ep := b.cl.redisEndpoints()
			ep.addr[hop] = b.cl.hop
			text, err = b.redisSection(s, "Large values: redis-benchmark -c 10, one key", largeCases(b.o.n, b.o.quick), ep)
		case "reshard":
			text, err = b.reshardSection(fmt.Sprintf("Resharding: %d keys from %d servers onto %d (migrate_from)",
				reshardKeys(b.o.quick), reshardOld, reshardOld+1))
		case "apps":
			text, err = b.appsSection(appsCases(b.o.n))
		case "cluster":
			text, err = b.clusterSection(fmt.Sprintf("Redis Cluster (%d primaries): redis-benchmark and go-redis, -c %d -r %d",
				clusterPrimaries, clusterClients, clusterKeyspace), clusterCases(b.o.n, b.o.quick))
		case "fleet":
			text, err = b.fleetSection(fleetCases(b.o.n, b.o.quick))
		}
		b.emit(text)
		if err != nil {
			return err
		}
	}
	b.emit(renderTargets(targetChecks(&b.results)))
	return nil
}

// emit prints text to stdout and keeps it for -out.
func (b *bench) emit(text string) {
	fmt.Fprint(b.out, text)
	b.report.WriteString(text)
}

func (b *bench) writeOut() error {
	if b.o.out == "" {
		return nil
	}
	if err := os.WriteFile(b.o.out, []byte(b.report.String()), 0o644); err != nil {
		return fmt.Errorf("write -out: %w", err)
	}
	return nil
}

// progress reports a step on stderr, so stdout stays the clean report.
func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// runFailure describes a load-generator run that failed.
func runFailure(tool string, args []string, runErr error, msg string) error {
	status := "exit status 0"
	if runErr != nil {
		status = runErr.Error()
	}
	return fmt.Errorf("%s %s: %s: %s", tool, strings.Join(args, " "), status, msg)
}

// header describes the machine and the command.
func header(o *options) string {
	var b strings.Builder
	b.WriteString("# shardproxy vs nutcracker vs direct\n\n")
	fmt.Fprintf(&b, "- date: %s\n", time.Now().Format(time.RFC3339))
	fmt.Fprintf(&b, "- nproc: %d\n", runtime.NumCPU())
	fmt.Fprintf(&b, "- CPU: %s\n", cpuModel())
	fmt.Fprintf(&b, "- command: `%s`\n", commandLine())
	fmt.Fprintf(&b, "- requests per run (-n): %d; rounds: %d (medians shown); idle connections: %d\n", o.n, o.rounds, o.conns)
	proxy := o.proxyBin
	if o.proxyBuilt {
		proxy = "built from ./cmd/shardproxy"
	}
	fmt.Fprintf(&b, "- shardproxy: %s; nutcracker: %s; %s\n", proxy, o.nutcrackerBin, toolVersion("redis-server", "--version"))
	if len(o.proxyFlags) > 0 {
		fmt.Fprintf(&b, "- shardproxy runs with `%s`: it shares the machine with the servers and the load generators\n", strings.Join(o.proxyFlags, " "))
	}
	b.WriteString("- pools: 4 servers, ketama, fnv1a_64, hash_tag {}, server_connections 1; direct = one server\n")
	b.WriteString("- ratios are shardproxy/nutcracker and shardproxy/direct within this run; CPU is utime+stime of the proxy process" +
		" (direct: of the server it talks to)\n\n")
	return b.String()
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// commandLine is the command as typed; a binary built by go run is shown as
// "go run ./bench".
func commandLine() string {
	name := os.Args[0]
	if strings.Contains(name, "go-build") {
		name = "go run ./bench"
	}
	return strings.Join(append([]string{name}, os.Args[1:]...), " ")
}

func toolVersion(bin string, args ...string) string {
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		return bin + " (version unknown)"
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}
