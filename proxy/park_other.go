//go:build !linux

package proxy

import "syscall"

// parker is Linux only: elsewhere idle clients keep their goroutines.
type parker struct{}

func newParker(*pool) *parker      { return nil }
func (*parker) park(*client) bool  { return false }
func (*parker) run()               {}
func (*parker) close()             {}
func clientFD(syscall.RawConn) int { return -1 }
