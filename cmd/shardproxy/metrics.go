package main

import (
	"log/slog"

	"github.com/shardproxy/shardproxy/metrics"
	"github.com/shardproxy/shardproxy/proxy"
)

// startMetrics serves px's Prometheus metrics, /healthz and /readyz on addr
// (--metrics-addr) and returns what stops it; an empty addr serves nothing.
// It returns once the listener is open, so that a daemon is ready only
// when it listens.
func startMetrics(addr string, px *proxy.Proxy, log *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	ms, err := metrics.Listen(addr, px, log)
	if err != nil {
		return nil, err
	}
	return func() {
		if err := ms.Close(); err != nil {
			log.Error("metrics: close", "err", err)
		}
	}, nil
}
