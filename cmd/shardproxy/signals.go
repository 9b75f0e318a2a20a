package main

import (
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopSignals and actionSignals are the signals the signal loop receives.
// As nutcracker's src/nc_signal.c: SIGHUP reopens the log file, SIGTTIN
// raises the log level, SIGTTOU lowers it; SIGUSR1 reloads the
// configuration file (nutcracker only logs it); SIGUSR2, unused by
// nutcracker, upgrades the binary as nginx's does (upgrade.go). SIGINT and
// SIGTERM stop the proxy, once requests in flight are answered. SIGTSTP (^Z) is logged and ignored: a stopped proxy stalls
// every client.
//
// Left out on purpose: SIGQUIT (and SIGABRT) keep Go's default, exit with
// every goroutine's stack on stderr, which is what one sends them for (the
// pid file stays behind, as after a crash). SIGKILL and SIGSTOP cannot be
// caught. SIGPIPE is ignored, not caught: see ignoreSIGPIPE. Go's runtime
// already catches and ignores the other signals whose default would end
// the process (SIGALRM, SIGVTALRM, SIGXCPU, ...).
var (
	stopSignals   = []os.Signal{syscall.SIGINT, syscall.SIGTERM}
	actionSignals = []os.Signal{sigReopen, sigLevelUp, sigLevelDown, sigReload, sigUpgrade, sigTermStop}
)

// signalLoop receives stopSignals and actionSignals and dispatches each to
// its action.
type signalLoop struct {
	// stop and act are apart because package signal drops what a full
	// channel cannot take: a burst of SIGTTOU must not cost a SIGTERM.
	stop, act chan os.Signal
	// fatal receives fatalSignals: logged, then the process dies by them.
	fatal chan os.Signal
	log   *logger
	// reload applies the configuration file again, for whoever asked
	// (by: "SIGUSR1", "shardproxy reload"); nil until the proxy runs
	// (startReloads). It runs in a goroutine of its own, off the loop, so
	// that a stop signal is served while it runs: pending holds the one
	// reload asked for meanwhile (requests coalesce), quit ends that
	// goroutine and reloaded is closed when it has.
	reload   func(by string) error
	pending  chan struct{}
	quit     chan struct{}
	reloaded chan struct{}
	// mu guards the reload waiting to run: who asked for it (askedBy)
	// and the requests waiting for its outcome (waiting).
	mu      sync.Mutex
	askedBy []string
	waiting []chan<- error
	// upgrade runs SIGUSR2's upgrades; nil until the proxy runs
	// (startUpgrades).
	upgrade *upgrader
}

// startUpgrades makes SIGUSR2 run u's upgrades; once one succeeds,
// waitForStop returns sigUpgrade.
func (l *signalLoop) startUpgrades(u *upgrader) { l.upgrade = u }

// startReloads makes SIGUSR1, and requestReload, run reload in a
// goroutine of its own.
func (l *signalLoop) startReloads(reload func(by string) error) {
	l.reload = reload
	l.pending, l.quit, l.reloaded = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(l.reloaded)
		for {
			select {
			case <-l.quit:
				return
			case <-l.pending:
			}
			// Whoever asked until now is served by this reload, which
			// reads the file after this point: a request made since the
			// receive above took a token it need not run again.
			l.mu.Lock()
			by, waiting := strings.Join(l.askedBy, " and "), l.waiting
			l.askedBy, l.waiting = nil, nil
			select {
			case <-l.pending:
			default:
			}
			l.mu.Unlock()
			err := reload(by)
			if err != nil {
				l.log.notice.Error(by+": reload refused, the running configuration is unchanged", "err", err)
			}
			for _, w := range waiting {
				w <- err
			}
		}
	}()
}

// requestReload asks for a reload on behalf of by; done, when not nil,
// receives its outcome and must have room for it. A request made while
// another waits to run joins it (joined), as SIGUSR1s always did. Call it
// after startReloads.
func (l *signalLoop) requestReload(by string, done chan<- error) (joined bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !slices.Contains(l.askedBy, by) {
		l.askedBy = append(l.askedBy, by)
	}
	if done != nil {
		l.waiting = append(l.waiting, done)
	}
	select {
	case l.pending <- struct{}{}:
		return false
	default:
		return true
	}
}

// reloadWait bounds how long Stop waits for a reload in progress.
const reloadWait = 2 * time.Second

// catchSignals starts receiving stopSignals and actionSignals. Call it
// before starting the proxy, so that a signal during startup waits for the
// loop instead of taking its default action; call Stop when done.
func catchSignals(log *logger) *signalLoop {
	l := &signalLoop{stop: make(chan os.Signal, 1), act: make(chan os.Signal, len(actionSignals)),
		fatal: make(chan os.Signal, 1), log: log}
	signal.Notify(l.stop, stopSignals...)
	signal.Notify(l.act, actionSignals...)
	if len(fatalSignals) > 0 {
		signal.Notify(l.fatal, fatalSignals...)
	}
	return l
}

// waitForStop runs the action of each signal received until SIGINT or
// SIGTERM, which it returns, or until an upgrade's new process serves, when
// it returns sigUpgrade. From then on a second SIGINT or SIGTERM has its
// default action and ends the process at once, for a stop that hangs; the
// other signals stay caught, without action, until Stop.
func (l *signalLoop) waitForStop() os.Signal {
	for {
		var s os.Signal
		select {
		case s = <-l.stop:
		case s = <-l.act:
		case s = <-l.fatal:
			l.die(s)
		case <-l.upgrade.upgraded():
			signal.Reset(syscall.SIGINT, syscall.SIGTERM)
			return sigUpgrade
		}
		if l.dispatch(s) {
			signal.Reset(syscall.SIGINT, syscall.SIGTERM)
			return s
		}
	}
}

// dispatch runs the action for one signal and reports whether the signal
// asks the proxy to stop. Lines saying what a signal did are logged whatever
// the log level, as nutcracker does.
func (l *signalLoop) dispatch(s os.Signal) (stop bool) {
	switch s {
	case syscall.SIGINT, syscall.SIGTERM:
		return true
	case sigReopen:
		l.reopenLog()
	case sigLevelUp:
		l.stepLevel("SIGTTIN", +1)
	case sigLevelDown:
		l.stepLevel("SIGTTOU", -1)
	case sigReload:
		if l.reload == nil {
			l.log.notice.Info("SIGUSR1: the proxy is not running yet; nothing to reload")
			break
		}
		if l.requestReload("SIGUSR1", nil) {
			l.log.notice.Info("SIGUSR1: a reload is already waiting to run; this one joins it")
		} else {
			l.log.notice.Info("SIGUSR1: reloading the configuration")
		}
	case sigTermStop:
		// A stopped proxy stalls every client: ^Z is logged, not obeyed
		// (SIGSTOP, which cannot be caught, still stops it).
		l.log.notice.Info("SIGTSTP: ignored; a stopped proxy would stall every client")
	case sigUpgrade:
		if l.upgrade == nil {
			l.log.notice.Info("SIGUSR2: the proxy is not running yet; nothing to upgrade")
			break
		}
		l.upgrade.begin()
	default:
		l.log.notice.Warn("signal without an action", "signal", s.String())
	}
	return false
}

// die logs a fatal signal sent from outside as nutcracker does ("signal 11
// (SIGSEGV) received, core dumping"), then ends the process by it.
func (l *signalLoop) die(s os.Signal) {
	sig := s.(syscall.Signal)
	l.log.notice.Error(fmt.Sprintf("signal %d (%s) received, core dumping", int(sig), signalName(sig)))
	dieBySignal(sig)
}

// signalName is a signal's name as nutcracker writes it: "SIGSEGV".
func signalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGSEGV:
		return "SIGSEGV"
	case syscall.SIGBUS:
		return "SIGBUS"
	}
	return sig.String()
}

// reopenLog reopens the -o log file, for logrotate: after it renamed the
// file, new lines go to a new file at the -o path.
func (l *signalLoop) reopenLog() {
	out := l.log.out
	if out.path == "" {
		l.log.notice.Info("SIGHUP: logging to stderr, no log file to reopen")
		return
	}
	if err := out.Reopen(); err != nil {
		l.log.notice.Error("SIGHUP: log file not reopened, logging to the old one", "path", out.path, "err", err)
		return
	}
	l.log.notice.Info("SIGHUP: log file reopened", "path", out.path)
}

// stepLevel moves the log level one step of nutcracker's verbosity: up
// (more verbose) for step +1, down for -1, within 0..11.
func (l *signalLoop) stepLevel(name string, step int) {
	was := l.log.verbosity
	l.log.setVerbosity(was + step)
	now, level := l.log.verbosity, l.log.level.Level().String()
	switch {
	case now > was:
		l.log.notice.Info(name+": log level up", "verbosity", now, "min_level", level)
	case now < was:
		l.log.notice.Info(name+": log level down", "verbosity", now, "min_level", level)
	default:
		l.log.notice.Info(name+": log level unchanged, at the end of its range", "verbosity", now, "min_level", level)
	}
}

// Stop stops receiving signals; they get their default actions back. It
// waits at most reloadWait for a reload in progress, and kills the new
// process of an upgrade in progress.
func (l *signalLoop) Stop() {
	signal.Stop(l.stop)
	signal.Stop(l.act)
	signal.Stop(l.fatal)
	l.upgrade.stop()
	if l.quit == nil {
		return
	}
	close(l.quit)
	select {
	case <-l.reloaded:
	case <-time.After(reloadWait):
		l.log.notice.Warn("a reload is still running; exiting without it")
	}
}
