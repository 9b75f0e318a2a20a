package main

import (
	"os"
	"syscall"
)

// Windows has none of the action signals but SIGHUP (a console closing);
// the others are values no signal ever has, so their actions never run.
// Reload there with --watch-config.
var (
	sigReopen    os.Signal = syscall.SIGHUP
	sigLevelUp   os.Signal = noSignal("SIGTTIN")
	sigLevelDown os.Signal = noSignal("SIGTTOU")
	sigReload    os.Signal = noSignal("SIGUSR1")
	sigUpgrade   os.Signal = noSignal("SIGUSR2")
	sigTermStop  os.Signal = noSignal("SIGTSTP")
)

// noSignal stands for a signal Windows does not have.
type noSignal string

func (s noSignal) String() string { return string(s) }
func (noSignal) Signal()          {}

// ignoreSIGPIPE has nothing to do on Windows.
func ignoreSIGPIPE() {}
