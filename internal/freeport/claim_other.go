//go:build !unix

package freeport

// claim claims nothing where there are no record locks: ports are then
// unique within a process only.
func claim(port int) bool { return true }
