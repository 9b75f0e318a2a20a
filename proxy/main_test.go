package proxy_test

import (
	"os"
	"testing"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

// TestMain stops the Redis Cluster the package's tests share, if one was
// made (testservers.SharedCluster).
func TestMain(m *testing.M) {
	code := m.Run()
	testservers.CloseSharedCluster()
	os.Exit(code)
}
