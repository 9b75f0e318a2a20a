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
	// The binary SIGUSR2 starts: found now, so that a file replaced on
	// disk since is the new binary.
	bin := findBinary(args)
	in, err := takeInheritance()
	if err != nil {
		fmt.Fprintf(stderr, "shardproxy: upgrade: %v\n", err)
		return 1
	}
	var daemon *readyPipe
	switch {
	case in != nil: // started by an upgrade, a daemon already if -d
		daemon = in.ready
	case o.daemonize:
		if daemon = takeReadyPipe(); daemon == nil {
			return startDaemon(o, stderr)
		}
	}
	// fail tells err on stderr and, in a daemon or an upgrade, to its
	// starter.
	fail := func(err error) int {
		fmt.Fprintf(stderr, "shardproxy: %v\n", err)
		in.close()
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
	stop, err := startProfiles(os.Getenv("SHARDPROXY_CPUPROFILE"), os.Getenv("SHARDPROXY_HEAPPROFILE"))
	if err != nil {
		return fail(err)
	}
	defer stop()
	return serve(cfg, o, log, sigs, daemon, in, bin)
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

// serve runs the proxy until SIGINT or SIGTERM, or until an upgrade's new
// process serves, handling the other signals as they come, and returns the
// exit code. It serves on the listening sockets an upgrade handed over
// (in) whose addresses are still configured. A daemon, or a process started by an upgrade,
// tells its starter it is ready once every listener is open and the pid
// file written, or the error that stopped it.
func serve(cfg *config.Config, o *options, lg *logger, sigs *signalLoop, daemon *readyPipe, in *inheritance, bin binary) int {
	log := lg.Logger
	popt := proxy.Options{Logger: log, ConfigPath: o.confFile}
	if o.statsPort > 0 {
		popt.StatsAddr = net.JoinHostPort(o.statsAddr, strconv.Itoa(o.statsPort))
	}
	metricsLn := in.take(o.metricsAddr)
	if in != nil {
		popt.Listeners, in.listeners = in.listeners, nil
	}
	// failed ends a start that went wrong; sockets inherited from an
	// upgrade stay, with their unix paths, the old process's.
	failed := func(px *proxy.Proxy, what string, err error) int {
		log.Error(what, "err", err)
		daemon.fail(err)
		if metricsLn != nil {
			metricsLn.Close()
		}
		if px != nil {
			if in != nil {
				px.HandOver()
			}
			px.Close()
		}
		return 1
	}
	px, err := proxy.New(cfg, popt)
	if err != nil {
		return failed(nil, "configuration", err)
	}
	// The metrics listener opens before the pools' (and Start opens the
	// stats port's before theirs): once a pool accepts, every port of the
	// process does, for a probe or a script that reads them as soon as the
	// pool answers. Connections wait in the kernel's backlog until served.
	if metricsLn == nil && o.metricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", o.metricsAddr); err != nil {
			return failed(px, "start", fmt.Errorf("metrics: %w", err))
		}
	}
	if err := px.Start(); err != nil {
		return failed(nil, "start", err) // Start closed px
	}
	ms, err := startMetrics(o.metricsAddr, metricsLn, px, log)
	metricsLn = nil // ms owns it
	if err != nil {
		return failed(px, "start", err)
	}
	defer ms.stop()
	removePid := false
	if o.pidFile != "" {
		if err := writePidFile(o.pidFile); err != nil {
			return failed(px, "pid file", err)
		}
		removePid = true
		defer func() {
			if removePid {
				os.Remove(o.pidFile)
			}
		}()
	}
	if in != nil {
		// Heard under NotifyAccess=all; the old process sends the same
		// once told ready, heard under the default NotifyAccess=main.
		if err := sdnotify.MainPID(os.Getpid(), ""); err != nil {
			log.Warn("service manager not notified", "err", err)
		}
	}
	daemon.ready()
	// Each reload, however asked for, is told to systemd (notify.go).
	notes := &reloadNotes{digest: px.ConfigDigest, log: log}
	sigs.startReloads(func(by string) error { return notes.around(by, px.Reload) })
	sigs.startUpgrades(newUpgrader(bin, o, lg, func() (map[string]*os.File, error) {
		return listenerFiles(px, ms)
	}))
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
	log.Info("shardproxy started", "version", proxy.Version, "conf", o.confFile, "pid", os.Getpid(),
		"daemon", o.daemonize, "upgrade", in != nil)
	s := sigs.waitForStop()
	newPid := sigs.upgrade.stop()
	// After an upgrade the pid file is the new process's, and the service
	// goes on in it: no STOPPING=1.
	removePid = removePid && newPid == 0
	if newPid == 0 {
		notes.sent(sdnotify.Stopping(stoppingStatus(s)))
	}
	return shutDown(px, s, newPid, log)
}

// writePidFile writes this process's pid in the file at path.
func writePidFile(path string) error {
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	return nil
}

// shutDown stops px, on the stop signal s or, when newPid is not 0, for an
// upgrade whose new process serves on the same sockets (their unix paths
// are left to it), and returns the exit code.
func shutDown(px *proxy.Proxy, s os.Signal, newPid int, log *slog.Logger) int {
	if newPid != 0 {
		px.HandOver()
		log.Info("shutting down: upgraded", "new_pid", newPid, "answering_in_flight_within", stopDrain)
	} else {
		log.Info("shutting down", "signal", s.String(), "answering_in_flight_within", stopDrain)
	}
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
