package testservers

import (
	"os"
	"syscall"
)

// procAttr is nil: only Linux kills a server with the test process
// (Pdeathsig); elsewhere the tests' cleanups stop it.
func procAttr() *syscall.SysProcAttr { return nil }

// pauseSignal and resumeSignal are nil: Windows cannot pause a process
// with a signal, so Stop and Continue skip the test.
var pauseSignal, resumeSignal os.Signal
