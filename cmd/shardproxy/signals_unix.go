//go:build !windows

package main

import (
	"os"
	"os/signal"
	"syscall"
)

// The action signals, as nutcracker's.
var (
	sigReopen    os.Signal = syscall.SIGHUP
	sigLevelUp   os.Signal = syscall.SIGTTIN
	sigLevelDown os.Signal = syscall.SIGTTOU
	sigReload    os.Signal = syscall.SIGUSR1
	sigUpgrade   os.Signal = syscall.SIGUSR2
	sigTermStop  os.Signal = syscall.SIGTSTP
)

// ignoreSIGPIPE makes the kernel ignore SIGPIPE, as nutcracker does. Without
// it Go's runtime ends the process with SIGPIPE when a write to fd 1 or 2
// meets a pipe whose reader is gone (`shardproxy 2>&1 | logger`, and logger
// exits); with it such a write returns EPIPE and slog drops the line.
// Ignored rather than caught: logging a caught SIGPIPE to a broken stderr
// would raise the next one, without end.
func ignoreSIGPIPE() { signal.Ignore(syscall.SIGPIPE) }
