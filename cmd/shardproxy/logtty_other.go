//go:build !linux

package main

// isTerminal reports false: the background check is Linux only.
func isTerminal(fd uintptr) bool { return false }

// writeWouldStop is never called off Linux.
func writeWouldStop(fd uintptr) bool { return false }
