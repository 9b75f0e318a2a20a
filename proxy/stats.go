package proxy

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"time"
)

// serveStats answers every connection with the stats JSON and closes it, as
// nutcracker's stats port does.
func (px *Proxy) serveStats(ln net.Listener) {
	defer px.wg.Done()
	started := time.Now()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		c.Write(px.statsJSON(started))
		c.Close()
	}
}

// statsJSON renders nutcracker's stats document from a snapshot: service
// fields, then one object per pool holding its counters and one object per
// server.
func (px *Proxy) statsJSON(started time.Time) []byte {
	snap := px.Snapshot()
	host, _ := os.Hostname()
	doc := map[string]any{
		"service":   "nutcracker",
		"source":    host,
		"version":   "0.5.0",
		"proxy":     "shardproxy " + Version,
		"uptime":    int64(snap.Time.Sub(started).Seconds()),
		"timestamp": snap.Time.Unix(),
	}
	doc["config_digest"] = snap.Config.Digest
	doc["reloads"] = snap.Config.Reloads
	doc["reload_failures"] = snap.Config.ReloadFailures
	doc["reload_error"] = snap.Config.LastReloadError
	// Connections, as nutcracker counts them: clients and servers, now
	// and ever.
	var curr, total int64
	for _, p := range snap.Pools {
		ps := map[string]any{
			"client_eof":            p.ClientEOF,
			"client_err":            p.ClientErr,
			"client_connections":    p.ClientConnections,
			"client_refused":        p.ClientRefused,
			"client_overflow":       p.ClientOverflow,
			"client_parked":         p.ClientParked,
			"client_buffered":       p.ClientBuffered,
			"server_ejects":         p.ServerEjects,
			"forward_error":         p.ForwardError,
			"fragments":             p.Fragments,
			"requests":              p.Requests,
			"migration_started":     oneIf(p.MigrationStarted),
			"migration_pending":     p.MigrationPending,
			"keys_migrated":         p.KeysMigrated,
			"migration_errors":      p.MigrationErrors,
			"keys_migrated_per_sec": p.MigrationKeysPerSec,
		}
		curr += p.ClientConnections
		total += p.ClientAccepted
		for _, s := range p.Servers {
			curr += s.ServerConnections
			total += s.Connects
			ps[s.Name] = map[string]any{
				"in_queue":           s.InQueue,
				"in_queue_bytes":     s.InQueueBytes,
				"out_queue":          s.OutQueue,
				"out_queue_bytes":    s.OutQueueBytes,
				"server_eof":         s.ServerEOF,
				"server_err":         s.ServerErr,
				"server_timedout":    s.ServerTimedout,
				"server_connections": s.ServerConnections,
				"server_ejected_at":  s.ServerEjectedAt,
				"requests":           s.Requests,
				"request_bytes":      s.RequestBytes,
				"responses":          s.Responses,
				"response_bytes":     s.ResponseBytes,
			}
			if p.Sentinel {
				srv := ps[s.Name].(map[string]any)
				srv["primary"] = s.Addr
				srv["failovers"] = s.Failovers
			}
			if p.Sentinel || p.Cluster != nil {
				ps[s.Name].(map[string]any)["replicas"] = append([]string{}, s.Replicas...)
			}
		}
		if p.Sentinel {
			ps["sentinels"] = p.Sentinels
			ps["sentinels_up"] = p.SentinelsUp
		}
		if p.Cluster != nil {
			clusterStats(ps, p.Cluster)
		}
		doc[p.Name] = ps
	}
	doc["curr_connections"] = curr
	doc["total_connections"] = total
	b, _ := json.Marshal(doc)
	return append(b, '\n')
}

// oneIf is 1 for true and 0 for false, as nutcracker's JSON shows flags.
func oneIf(b bool) int {
	if b {
		return 1
	}
	return 0
}
