package commands

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

// TestReadOnlyCommandsMatchServer checks the commands replica_reads may
// send to a replica against a real redis-server's COMMAND flags: each is
// flagged readonly and not write, and every forwarded command the server
// flags readonly (but PFCOUNT, which may write its cache, and OBJECT) is
// one of them.
func TestReadOnlyCommandsMatchServer(t *testing.T) {
	srv := testservers.Redis(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := c.Command(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for name := range table {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		cmd := table[name]
		ci, ok := info[strings.ToLower(name)]
		if !ok {
			if cmd.ReadOnly {
				t.Errorf("%s: readonly, but the server does not know it", name)
			}
			continue
		}
		serverRO := slices.Contains(ci.Flags, "readonly") && !slices.Contains(ci.Flags, "write")
		switch {
		case cmd.ReadOnly && !serverRO:
			t.Errorf("%s: readonly here, the server's flags are %v", name, ci.Flags)
		case !cmd.ReadOnly && serverRO && forwarded(cmd) && name != "PFCOUNT" && name != "OBJECT":
			t.Errorf("%s: the server flags it %v, but it is not readonly here", name, ci.Flags)
		}
	}
}
