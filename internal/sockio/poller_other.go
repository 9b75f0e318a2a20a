//go:build !linux

package sockio

import (
	"errors"
	"time"
)

// Poller is Linux only (epoll): NewPoller returns errors.ErrUnsupported
// here, and idle connections keep their goroutines.
type Poller struct{}

// NewPoller returns errors.ErrUnsupported.
func NewPoller() (*Poller, error) { return nil, errors.ErrUnsupported }

// Add returns errors.ErrUnsupported.
func (*Poller) Add(int) error { return errors.ErrUnsupported }

// Rearm returns errors.ErrUnsupported.
func (*Poller) Rearm(int) error { return errors.ErrUnsupported }

// AddHangup returns errors.ErrUnsupported.
func (*Poller) AddHangup(int) error { return errors.ErrUnsupported }

// Delete returns errors.ErrUnsupported.
func (*Poller) Delete(int) error { return errors.ErrUnsupported }

// Wait returns errors.ErrUnsupported.
func (*Poller) Wait([]int, time.Time) (int, error) { return 0, errors.ErrUnsupported }

// Poll returns errors.ErrUnsupported.
func (*Poller) Poll([]int) (int, error) { return 0, errors.ErrUnsupported }

// Close returns nil.
func (*Poller) Close() error { return nil }

// Loops says the system has what event loops need: it has not.
const Loops = false
