//go:build !linux

package main

import (
	"fmt"
	"io"
	"log/slog"
)

// listenReloadRequests: the reload socket is an abstract unix socket,
// which Linux alone has; elsewhere SIGUSR1 is the way to reload.
func listenReloadRequests(*signalLoop, func() string, *slog.Logger) (stop func(), err error) {
	return func() {}, nil
}

// runReloadCmd is `shardproxy reload`, which needs Linux.
func runReloadCmd(_ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "shardproxy reload: runs on Linux only; send SIGUSR1 instead")
	return 1
}
