//go:build linux

package main

import (
	"runtime"
	"syscall"
	"unsafe"
)

// tostop is termios's TOSTOP bit, which package syscall lacks on some
// architectures (amd64 among them).
var tostop = func() uint32 {
	switch runtime.GOARCH {
	case "mips", "mipsle", "mips64", "mips64le":
		return 0x8000
	case "ppc64", "ppc64le":
		return 0x400000
	}
	return 0x100
}()

// tcgets reads the terminal settings of fd; it fails when fd is no terminal.
func tcgets(fd uintptr) (syscall.Termios, error) {
	var t syscall.Termios
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TCGETS, uintptr(unsafe.Pointer(&t))); e != 0 {
		return t, e
	}
	return t, nil
}

// isTerminal reports whether fd is a terminal.
func isTerminal(fd uintptr) bool {
	_, err := tcgets(fd)
	return err == nil
}

// writeWouldStop reports whether the kernel would answer a write to the
// terminal fd with SIGTTOU: `stty tostop` is set and our process group is
// not the terminal's foreground group, as for a shell's background job.
// Since the proxy catches SIGTTOU instead of stopping, the kernel would
// restart such a write again and again, spinning, until the job is brought
// to the foreground.
func writeWouldStop(fd uintptr) bool {
	t, err := tcgets(fd)
	if err != nil || t.Lflag&tostop == 0 {
		return false
	}
	var fg int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCGPGRP, uintptr(unsafe.Pointer(&fg))); e != 0 {
		return false // not our controlling terminal: no SIGTTOU
	}
	return int(fg) != syscall.Getpgrp()
}
