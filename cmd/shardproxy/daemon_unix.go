//go:build !windows

package main

import "syscall"

// daemonAttr puts the daemon in a session of its own.
func daemonAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }

// closeOnExec keeps fd from the daemon.
func closeOnExec(fd int) { syscall.CloseOnExec(fd) }
