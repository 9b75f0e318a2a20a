//go:build !linux

package sdnotify

import "errors"

// MonotonicUsec is only needed for systemd, which runs on Linux alone.
func MonotonicUsec() (uint64, error) {
	return 0, errors.New("sdnotify: CLOCK_MONOTONIC is read on Linux only")
}
