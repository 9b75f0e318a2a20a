//go:build !linux

package sockio

import (
	"errors"
	"testing"
)

func TestPollerUnsupported(t *testing.T) {
	if _, err := NewPoller(); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("NewPoller: %v, want errors.ErrUnsupported", err)
	}
}
