//go:build !windows

package proxytest

import (
	"syscall"
	"testing"
)

// RaiseFileLimit lifts the soft RLIMIT_NOFILE to at least need where it
// can (up to the hard limit, which root may raise too), restores it when
// the test ends, and returns the soft limit in force.
func RaiseFileLimit(t *testing.T, need uint64) uint64 {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("getrlimit: %v", err)
	}
	if lim.Cur >= need {
		return lim.Cur
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) })
	want := lim
	want.Cur = max(need, min(lim.Max, need*2))
	want.Max = max(want.Max, want.Cur)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err == nil {
		return want.Cur
	}
	want = lim
	want.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		t.Logf("setrlimit: %v", err)
		return lim.Cur
	}
	return want.Cur
}
