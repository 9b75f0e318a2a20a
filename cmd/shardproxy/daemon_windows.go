package main

import "syscall"

// daemonAttr detaches the daemon from the console on Windows, where
// -d is best replaced by running shardproxy as a service.
func daemonAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}

// closeOnExec has nothing to do: Windows passes only the handles asked for.
func closeOnExec(int) {}
