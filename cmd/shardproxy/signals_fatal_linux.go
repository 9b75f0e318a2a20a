package main

import (
	"os"
	"syscall"
	"time"
	"unsafe"
)

// fatalSignals are the signals that, sent from outside (kill -SEGV), are
// logged as nutcracker logs them and then end the process by their
// default action: a core dump where enabled. A fault of the program
// itself is not delivered here: Go's runtime turns it into a crash with
// its trace on stderr.
var fatalSignals = []os.Signal{syscall.SIGSEGV, syscall.SIGBUS}

// kernelSigaction is struct sigaction as the rt_sigaction system call
// takes it on Linux; its zero value is SIG_DFL with no flags.
type kernelSigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

// dieBySignal gives sig its default action back in the kernel, under Go's
// runtime, which otherwise keeps its own handler, and sends it to the
// process: the process ends by sig (with a core dump where enabled),
// not with an exit status of Go's.
func dieBySignal(sig syscall.Signal) {
	var dfl kernelSigaction
	syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&dfl)), 0,
		unsafe.Sizeof(dfl.mask), 0, 0)
	syscall.Kill(os.Getpid(), sig)
	// The kernel delivers it to one of the process's threads soon after;
	// should it not, exit as a shell reports a death by it.
	time.Sleep(5 * time.Second)
	os.Exit(128 + int(sig))
}
