// Command shardproxy is a Redis and memcached sharding proxy that reads
// nutcracker's configuration and takes nutcracker's flags.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/internal/sdnotify"
	"github.com/shardproxy/shardproxy/proxy"
)

// options are the command line, with nutcracker's names and defaults.
type options struct {
	help, version, testConf, describeStats, daemonize bool
	watchConfig                                       bool
	verbose                                           int
	output, confFile, statsAddr, pidFile, metricsAddr string
	logFormat                                         logFormat
	statsPort, statsInterval, mbufSize, threads       int
	given                                             []*flag.Flag // the flags set on the command line
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("shardproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	both := func(short, long string, f func(name string)) { f(short); f(long) }
	both("h", "help", func(n string) { fs.BoolVar(&o.help, n, false, "show this help and exit") })
	both("V", "version", func(n string) { fs.BoolVar(&o.version, n, false, "show the version and exit") })
	both("t", "test-conf", func(n string) {
		fs.BoolVar(&o.testConf, n, false, "check the configuration for syntax errors and exit")
	})
	both("d", "daemonize", func(n string) {
		fs.BoolVar(&o.daemonize, n, false, "run as a daemon; without -o it logs nowhere")
	})
	both("D", "describe-stats", func(n string) { fs.BoolVar(&o.describeStats, n, false, "print the stats description and exit") })
	both("v", "verbose", func(n string) {
		fs.IntVar(&o.verbose, n, 5, "log level, 0-11 as nutcracker (5 notice, 6 info, 7+ debug)")
	})
	both("o", "output", func(n string) { fs.StringVar(&o.output, n, "", "log file (default stderr)") })
	both("c", "conf-file", func(n string) { fs.StringVar(&o.confFile, n, "conf/nutcracker.yml", "configuration file") })
	both("s", "stats-port", func(n string) { fs.IntVar(&o.statsPort, n, 22222, "stats port (0 disables the stats listener)") })
	both("a", "stats-addr", func(n string) { fs.StringVar(&o.statsAddr, n, "0.0.0.0", "stats address") })
	both("i", "stats-interval", func(n string) {
		fs.IntVar(&o.statsInterval, n, 30000, "accepted for compatibility; stats are always current")
	})
	both("p", "pid-file", func(n string) { fs.StringVar(&o.pidFile, n, "", "pid file") })
	both("m", "mbuf-size", func(n string) {
		fs.IntVar(&o.mbufSize, n, 16384, "accepted for compatibility; buffers are sized per request")
	})
	logFormatFlag := fs.String("log-format", "text", "log lines as slog's text or json")
	fs.StringVar(&o.metricsAddr, "metrics-addr", "",
		"serve Prometheus metrics (/metrics), /healthz and /readyz over HTTP on host:port (default: off)")
	fs.BoolVar(&o.watchConfig, "watch-config", false,
		"reload, as on SIGUSR1, a new content of the configuration file once three checks a second apart read it the same (follows a rename-and-replace and a symlink swap)")
	both("T", "threads", func(n string) {
		fs.IntVar(&o.threads, n, 0, "threads running Go code (default: Go's GOMAXPROCS: the environment's, else every core the process may use)")
	})
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	// bad says what is wrong on stderr (the flag package says it for
	// the errors it finds).
	bad := func(format string, args ...any) (*options, error) {
		err := fmt.Errorf(format, args...)
		fmt.Fprintf(stderr, "shardproxy: %v\n", err)
		return nil, err
	}
	if fs.NArg() > 0 {
		return bad("unexpected argument %q", fs.Arg(0))
	}
	o.given = givenFlags(fs)
	var ok bool
	if o.logFormat, ok = parseLogFormat(*logFormatFlag); !ok {
		return bad("log-format must be text or json, not %q", *logFormatFlag)
	}
	if o.threads < 0 {
		return bad("threads must be 0 (default) or more, not %d", o.threads)
	}
	if o.help {
		fs.SetOutput(stderr)
		fmt.Fprintf(stderr, "Usage: shardproxy [-?hVdDt] [-v verbosity level] [-o output file]\n"+
			"                  [-c conf file] [-s stats port] [-a stats addr]\n"+
			"                  [-i stats interval] [-p pid file] [-m mbuf size]\n"+
			"                  [-T threads] [--metrics-addr host:port] [--watch-config]\n\nOptions:\n")
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\nCommands:\n"+
			"  shardproxy reshard --plan -c conf file [--pool name]\n"+
			"        what a migrate_from in the file moves: servers, slots, sampled keys and bytes\n"+
			"  shardproxy reshard --stats host:port[,host:port...] [--pool name]\n"+
			"        watch running proxies until their migration completes (shardproxy reshard -h)\n"+
			"  shardproxy reload (--pid N | -p pid file)\n"+
			"        reload a running proxy's configuration as SIGUSR1 does and wait: exit 1 if refused\n")
	}
	return o, nil
}

// main runs shardproxy; SIGPIPE is ignored from the first line on, so that
// no write to a broken stderr pipe ends the process.
func main() {
	ignoreSIGPIPE()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run does what the command line asks and returns the exit code:
// "shardproxy reshard ..." plans and watches migrations (reshard.go); any
// other command line is nutcracker's.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "reshard" {
		return runReshard(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "reload" {
		return runReloadCmd(args[1:], stdout, stderr)
	}
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 1
	}
	switch {
	case o.help:
		return 0
	case o.version:
		fmt.Fprintf(stdout, "This is shardproxy-%s\n", proxy.Version)
		return 0
	case o.describeStats:
		fmt.Fprint(stdout, statsDescription)
		return 0
	case o.testConf: // with or without -d, as nutcracker
		return testConf(o.confFile, stdout, stderr)
	}
	var daemon *readyPipe
	if o.daemonize {
		if daemon = takeReadyPipe(); daemon == nil {
			return startDaemon(o, stderr)
		}
	}
	// fail tells err on stderr and, in a daemon, to its starter.
	fail := func(err error) int {
		fmt.Fprintf(stderr, "shardproxy: %v\n", err)
		daemon.fail(err)
		return 1
	}
	cfg, err := config.Load(o.confFile)
	if err != nil {
		return fail(err)
	}
	log, err := newLogger(o.output, o.verbose, o.logFormat, stderr)
	if err != nil {
		return fail(err)
	}
	defer log.Close()
	sigs := catchSignals(log)
	defer sigs.Stop()
	setThreads(o.threads, log.Logger)
	if path := os.Getenv("SHARDPROXY_CPUPROFILE"); path != "" {
		stop, err := startCPUProfile(path)
		if err != nil {
			return fail(err)
		}
		defer stop()
	}
	return serve(cfg, o, log.Logger, sigs, daemon)
}

// testConf checks the configuration at path as -t does: what a start would
// meet, short of binding its ports.
func testConf(path string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(path)
	if err == nil {
		err = proxy.Check(cfg) // what start would meet: listen hosts and paths, certificate files
	}
	if err != nil {
		fmt.Fprintf(stderr, "shardproxy: configuration file '%s' syntax is invalid: %v\n", path, err)
		return 1
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stderr, "shardproxy: warning: %s\n", w)
	}
	fmt.Fprintf(stdout, "shardproxy: configuration file '%s' syntax is ok\n", path)
	return 0
}

// serve runs the proxy until SIGINT or SIGTERM, handling the other signals
// as they come, and returns the exit code. A daemon tells its starter it is
// ready once every listener is open and the pid file written, or the error
// that stopped it.
func serve(cfg *config.Config, o *options, log *slog.Logger, sigs *signalLoop, daemon *readyPipe) int {
	popt := proxy.Options{Logger: log, ConfigPath: o.confFile}
	if o.statsPort > 0 {
		popt.StatsAddr = net.JoinHostPort(o.statsAddr, strconv.Itoa(o.statsPort))
	}
	px, err := proxy.New(cfg, popt)
	if err != nil {
		log.Error("configuration", "err", err)
		daemon.fail(err)
		return 1
	}
	if err := px.Start(); err != nil {
		log.Error("start", "err", err)
		daemon.fail(err)
		return 1
	}
	stopMetrics, err := startMetrics(o.metricsAddr, px, log)
	if err != nil {
		log.Error("start", "err", err)
		daemon.fail(err)
		px.Close()
		return 1
	}
	defer stopMetrics()
	if o.pidFile != "" {
		if err := os.WriteFile(o.pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			log.Error("pid file", "err", err)
			daemon.fail(fmt.Errorf("pid file: %w", err))
			px.Close()
			return 1
		}
		defer os.Remove(o.pidFile)
	}
	daemon.ready()
	// Each reload, however asked for, is told to systemd (notify.go).
	notes := &reloadNotes{digest: px.ConfigDigest, log: log}
	sigs.startReloads(func(by string) error { return notes.around(by, px.Reload) })
	if stop, err := listenReloadRequests(sigs, px.ConfigDigest, log); err != nil {
		log.Warn("`shardproxy reload` cannot reach this process; SIGUSR1 still reloads", "err", err)
	} else {
		defer stop()
	}
	if o.watchConfig {
		stop := watchConfig(o.confFile, time.Second, log, notifiedReloader{px, notes})
		defer stop()
	}
	// Every listener is open and the pid file written: READY=1 for
	// systemd's Type=notify(-reload), a no-op without NOTIFY_SOCKET.
	notes.sent(sdnotify.Ready(readyStatus(len(cfg.Pools), px.ConfigDigest())))
	log.Info("shardproxy started", "version", proxy.Version, "conf", o.confFile, "pid", os.Getpid(), "daemon", daemon != nil)
	s := sigs.waitForStop()
	notes.sent(sdnotify.Stopping(stoppingStatus(s)))
	log.Info("shutting down", "signal", s.String(), "answering_in_flight_within", stopDrain)
	if err := px.Shutdown(stopDrain); err != nil {
		log.Error("close", "err", err)
		return 1
	}
	return 0
}

// stopDrain bounds how long SIGINT or SIGTERM waits for requests in flight
// to be answered before the remaining connections are closed.
const stopDrain = 5 * time.Second

const statsDescription = `pool stats:
  client_eof          "# eof on client connections"
  client_err          "# errors on client connections"
  client_connections  "# active client connections"
  client_refused      "# clients turned away at client_connections"
  client_overflow     "# clients closed for holding more unread replies than client_output_limit"
  client_parked       "# idle clients waiting without a goroutine (client_park_after)"
  client_buffered     "# clients holding a request buffer: reading a request or being answered"
  server_ejects       "# times a backend server was ejected"
  forward_error       "# times we encountered a forwarding error"
  fragments           "# fragments created from multi-key requests whose keys live on several servers"
  requests            "# requests from clients"
  migration_started   "1 once a migration (migrate_from) routes by the new placement (from its start_at); else 0"
  migration_pending   "# old owners a migration (migrate_from) has still to scan; 0 when complete or none"
  keys_migrated       "# keys moved by MIGRATE, on access and in the background"
  migration_errors    "# MIGRATEs and SCANs of a migration that failed"
  keys_migrated_per_sec "keys moved per second over the last ten seconds"
  sentinels           "# Sentinels of the pool (only with sentinels)"
  sentinels_up        "# Sentinels whose +switch-master subscription is up now (only with sentinels)"

server stats:
  server_eof          "# eof on server connections"
  server_err          "# errors on server connections, failed connects included"
  server_timedout     "# timeouts on server connections"
  server_connections  "# active server connections"
  server_ejected_at   "timestamp when server was last ejected in usec since epoch (0 when never)"
  requests            "# requests queued for the server"
  request_bytes       "total bytes of requests queued for the server"
  responses           "# responses read from the server"
  response_bytes      "total bytes of responses read from the server"
  in_queue            "# requests waiting to be written"
  in_queue_bytes      "bytes of requests waiting to be written"
  out_queue           "# requests written, waiting for their replies"
  out_queue_bytes     "bytes of requests written, waiting for their replies"
  primary             "address the server is dialled at: its master's primary (only with sentinels)"
  failovers           "# moves to another primary (only with sentinels)"
  replicas            "addresses its reads go to with replica_reads; empty when to the primary (only with sentinels)"
`
