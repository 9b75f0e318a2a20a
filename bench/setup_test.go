//go:build linux

package main

import (
	"context"
	"slices"
	"testing"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

// TestProxyFlags checks that shardproxy runs with -T 1 in the bench, and a
// second nutcracker standing in for it with no -T, which it would refuse.
func TestProxyFlags(t *testing.T) {
	bin, err := buildProxy(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if got := proxyFlags(bin); !slices.Equal(got, []string{"-T", "1"}) {
		t.Errorf("shardproxy runs with %q, want -T 1", got)
	}
	nc := testservers.Need(t, "nutcracker")
	if got := proxyFlags(nc); got != nil {
		t.Errorf("nutcracker runs with %q, want no flags", got)
	}
}
