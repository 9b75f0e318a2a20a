//go:build linux

package main

import "testing"

// TestReshardWritesToTerminal: a pseudo-terminal is taken for a terminal,
// so that "reshard --stats" redraws its progress line there.
func TestReshardWritesToTerminal(t *testing.T) {
	_, slave := openPTY(t)
	if !writesToTerminal(slave) {
		t.Error("a pseudo-terminal not taken for a terminal")
	}
}
