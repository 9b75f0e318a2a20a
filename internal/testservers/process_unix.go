//go:build unix && !linux

package testservers

import (
	"os"
	"syscall"
)

// procAttr is nil: only Linux kills a server with the test process
// (Pdeathsig); elsewhere the tests' cleanups stop it.
func procAttr() *syscall.SysProcAttr { return nil }

// pauseSignal and resumeSignal pause and resume a server (Stop, Continue).
var pauseSignal, resumeSignal os.Signal = syscall.SIGSTOP, syscall.SIGCONT
