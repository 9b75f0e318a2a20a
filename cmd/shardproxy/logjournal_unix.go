//go:build !windows

package main

import (
	"os"
	"syscall"
)

// sameFile reports whether f is the file of device dev and inode ino.
func sameFile(f *os.File, dev, ino uint64) bool {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return uint64(st.Dev) == dev && uint64(st.Ino) == ino
}
