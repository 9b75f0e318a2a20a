//go:build unix

package freeport

import (
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// claims is the lock file whose bytes stand for ports: a process that
// holds a write lock on byte p has claimed port p. The locks are the
// kernel's record locks, so they end with the process that holds them,
// however it ends.
var claims struct {
	once sync.Once
	f    *os.File // nil when the file cannot be opened: no claims
}

// claim takes port for this process, unless another process holding it
// has claimed it. Two test binaries that run at once (go test runs
// packages in parallel) thus never hand out the same port, even while a
// server of one is down between a kill and its restart on its port.
func claim(port int) bool {
	claims.once.Do(func() {
		f, err := os.OpenFile(filepath.Join(os.TempDir(), "shardproxy-test-ports.lock"), os.O_RDWR|os.O_CREATE, 0o666)
		if err == nil {
			claims.f = f
		}
	})
	if claims.f == nil {
		return true
	}
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: int64(port), Len: 1}
	return syscall.FcntlFlock(claims.f.Fd(), syscall.F_SETLK, &lk) == nil
}
