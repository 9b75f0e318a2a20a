//go:build !linux

package main

import (
	"os"
	"syscall"
)

// fatalSignals: elsewhere SIGSEGV and SIGBUS keep Go's default.
var fatalSignals []os.Signal

// dieBySignal is never called where fatalSignals is empty.
func dieBySignal(sig syscall.Signal) { os.Exit(128 + int(sig)) }
