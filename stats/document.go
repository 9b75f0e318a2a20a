package stats

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"time"
)

// MaxSize bounds the document Read accepts.
const MaxSize = 64 << 20

// Document is what a stats document tells of a proxy's configuration and
// migrations.
type Document struct {
	Digest         string `json:"config_digest"` // empty from nutcracker
	Reloads        int64  `json:"reloads"`
	ReloadFailures int64  `json:"reload_failures"`
	ReloadError    string `json:"reload_error"`
	// Pools are the pools that report migration counters (every redis
	// pool of a shardproxy), by name.
	Pools map[string]Migration `json:"-"`
}

// Migration is a pool's migration counters.
type Migration struct {
	Pending int64 `json:"migration_pending"` // old owners the mover has still to scan
	Moved   int64 `json:"keys_migrated"`
	Errors  int64 `json:"migration_errors"`
	// Started is migration_started (1 once the pool routes by the new
	// placement, from migrate_from's start_at), nil from a proxy without
	// the field.
	Started *int64 `json:"migration_started"`
}

// Waiting reports whether the pool's migration waits for its start_at.
func (m Migration) Waiting() bool {
	return m.Started != nil && *m.Started == 0 && m.Pending > 0
}

// Read returns the document the stats port at addr answers with: it
// connects and reads until the proxy closes the connection, within
// timeout.
func Read(addr string, timeout time.Duration) ([]byte, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(c, MaxSize))
}

// Parse decodes a stats document. A pool is an object with a
// migration_pending field; an object without one (nutcracker's pools, a
// memcache pool) is not in Pools.
func Parse(b []byte) (*Document, error) {
	d := &Document{Pools: map[string]Migration{}}
	if err := json.Unmarshal(b, d); err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return nil, err
	}
	for name, raw := range fields {
		var counters map[string]json.RawMessage
		if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &counters) != nil || counters["migration_pending"] == nil {
			continue
		}
		var m Migration
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("pool %q: %w", name, err)
		}
		d.Pools[name] = m
	}
	return d, nil
}
