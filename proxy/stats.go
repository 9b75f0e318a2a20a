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

// statsJSON renders nutcracker's stats document: service fields, then one
// object per pool holding its counters and one object per server.
func (px *Proxy) statsJSON(started time.Time) []byte {
	host, _ := os.Hostname()
	doc := map[string]any{
		"service":   "nutcracker",
		"source":    host,
		"version":   "0.5.0",
		"proxy":     "shardproxy " + Version,
		"uptime":    int64(time.Since(started).Seconds()),
		"timestamp": time.Now().Unix(),
	}
	// Connections, as nutcracker counts them: clients and servers, now
	// and ever.
	px.reload.mu.Lock()
	doc["config_digest"] = px.reload.digest
	doc["reloads"] = px.reload.reloads
	doc["reload_failures"] = px.reload.failures
	doc["reload_error"] = px.reload.lastErr
	px.reload.mu.Unlock()
	var curr, total int64
	for _, p := range px.poolList() {
		ps := map[string]any{
			"client_eof":         p.stats.clientEOF.Load(),
			"client_err":         p.stats.clientErr.Load(),
			"client_connections": p.stats.clientConnections.Load(),
			"client_refused":     p.stats.clientRefused.Load(),
			"client_overflow":    p.stats.clientOverflow.Load(),
			"client_parked":      p.stats.clientParked.Load(),
			"client_buffered":    p.stats.clientBuffered.Load(),
			"server_ejects":      p.stats.serverEjects.Load(),
			"forward_error":      p.stats.forwardError.Load(),
			"fragments":          p.stats.fragments.Load(),
			"requests":           p.stats.requests.Load(),
		}
		curr += p.stats.clientConnections.Load()
		total += p.stats.clientAccepted.Load()
		rt := p.routing()
		for _, s := range rt.servers {
			st := &s.Stats
			curr += st.ServerConnections.Load()
			total += st.Connects.Load()
			q := s.Queues()
			ps[s.Name()] = map[string]any{
				"in_queue":           q.In,
				"in_queue_bytes":     q.InBytes,
				"out_queue":          q.Out,
				"out_queue_bytes":    q.OutBytes,
				"server_eof":         st.ServerEOF.Load(),
				"server_err":         st.ServerErr.Load(),
				"server_timedout":    st.ServerTimedout.Load(),
				"server_connections": st.ServerConnections.Load(),
				"server_ejected_at":  st.ServerEjectedAt.Load(),
				"requests":           st.Requests.Load(),
				"request_bytes":      st.RequestBytes.Load(),
				"responses":          st.Responses.Load(),
				"response_bytes":     st.ResponseBytes.Load(),
			}
		}
		doc[rt.cfg.Name] = ps
	}
	doc["curr_connections"] = curr
	doc["total_connections"] = total
	b, _ := json.Marshal(doc)
	return append(b, '\n')
}
