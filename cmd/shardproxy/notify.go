package main

import (
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"

	"github.com/shardproxy/shardproxy/internal/sdnotify"
)

// reloadNotes tells the service manager (sd_notify, under systemd's
// Type=notify-reload) about each reload, whichever way it was asked for
// (SIGUSR1, `shardproxy reload`, --watch-config): RELOADING=1 with
// MONOTONIC_USEC= before, then STATUS= with the outcome and READY=1 after.
// A refused reload also ends with READY=1: the process serves on with the
// configuration it had; the failure reaches `systemctl reload` through
// ExecReload= (`shardproxy reload`, reload_linux.go), since the notify
// protocol has no field for it.
type reloadNotes struct {
	// mu keeps one reload's RELOADING=1 ... READY=1 apart from another's
	// (SIGUSR1's goroutine and the watcher's may both reload).
	mu     sync.Mutex
	digest func() string // the running configuration's digest
	log    *slog.Logger
}

// around runs reload, asked for by by, between the notifications.
func (n *reloadNotes) around(by string, reload func() error) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sent(sdnotify.Reloading("reloading the configuration (" + by + ")"))
	err := reload()
	n.sent(sdnotify.Ready(reloadStatus(by, n.digest(), err)))
	return err
}

// sent logs a notification that could not be sent.
func (n *reloadNotes) sent(err error) {
	if err != nil {
		n.log.Warn("service manager not notified", "err", err)
	}
}

// reloadStatus is the status line after a reload asked for by by: applied,
// or refused and why, with the digest of the configuration that runs.
func reloadStatus(by, digest string, err error) string {
	if err != nil {
		return fmt.Sprintf("reload refused (%s); configuration %s still runs: %v", by, digest, err)
	}
	return fmt.Sprintf("reload applied (%s): configuration %s runs", by, digest)
}

// readyStatus is the status line once every listener is open.
func readyStatus(pools int, digest string) string {
	noun := "pools"
	if pools == 1 {
		noun = "pool"
	}
	return fmt.Sprintf("serving %d %s, configuration %s", pools, noun, digest)
}

// notifiedReloader is what --watch-config reloads: the proxy, each reload
// between reloadNotes' notifications.
type notifiedReloader struct {
	reloader
	notes *reloadNotes
}

// ReloadBytes applies data as the proxy does, notifying around it.
func (r notifiedReloader) ReloadBytes(data []byte) error {
	return r.notes.around("--watch-config", func() error { return r.reloader.ReloadBytes(data) })
}

// stoppingStatus is the status line once SIGTERM or SIGINT has come.
func stoppingStatus(s os.Signal) string {
	name := s.String()
	switch s {
	case syscall.SIGTERM:
		name = "SIGTERM"
	case syscall.SIGINT:
		name = "SIGINT"
	}
	return "stopping on " + name + ": answering requests in flight"
}
