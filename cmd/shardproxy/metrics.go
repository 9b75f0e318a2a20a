package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/shardproxy/shardproxy/listeners"
	"github.com/shardproxy/shardproxy/metrics"
	"github.com/shardproxy/shardproxy/proxy"
)

// metricsServer is the --metrics-addr listener and what serves on it; a
// nil *metricsServer serves nothing.
type metricsServer struct {
	addr string
	ln   net.Listener
	srv  *metrics.Server
	log  *slog.Logger
}

// startMetrics serves px's Prometheus metrics, /healthz and /readyz on addr
// (--metrics-addr), on ln when an upgrade handed it over, else on a
// listener of its own; an empty addr serves nothing. It returns once the
// listener is open, so that a daemon is ready only when it listens.
func startMetrics(addr string, ln net.Listener, px *proxy.Proxy, log *slog.Logger) (*metricsServer, error) {
	if addr == "" {
		if ln != nil {
			ln.Close()
		}
		return nil, nil
	}
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return &metricsServer{addr: addr, ln: ln, srv: metrics.Serve(ln, px, log), log: log}, nil
}

// stop closes the listener and ends the scrapes in progress.
func (m *metricsServer) stop() {
	if m == nil {
		return
	}
	if err := m.srv.Close(); err != nil {
		m.log.Error("metrics: close", "err", err)
	}
}

// listenerFiles are copies of every listening socket of the process, by
// address, for an upgrade: px's and the metrics listener.
func listenerFiles(px *proxy.Proxy, ms *metricsServer) (map[string]*os.File, error) {
	files, err := px.ListenerFiles()
	if err != nil || ms == nil {
		return files, err
	}
	f, err := listeners.File(ms.ln)
	if err != nil {
		for _, f := range files {
			f.Close()
		}
		return nil, fmt.Errorf("listener %s: %w", ms.addr, err)
	}
	files[ms.addr] = f
	return files, nil
}
