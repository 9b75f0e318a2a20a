package testservers

import (
	"os"
	"syscall"
)

// procAttr makes a server die with the test process, even one killed
// before its cleanups ran.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }

// pauseSignal and resumeSignal pause and resume a server (Stop, Continue).
var pauseSignal, resumeSignal os.Signal = syscall.SIGSTOP, syscall.SIGCONT
