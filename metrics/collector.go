package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardproxy/shardproxy/stats"
)

// Source is what the collector reads at each scrape: a *proxy.Proxy.
type Source interface {
	Snapshot() stats.Snapshot
}

const namespace = "shardproxy"

// poolMetric is one metric with a value per pool.
type poolMetric struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType
	value func(p *stats.Pool) float64
}

// serverMetric is one metric with a value per server of a pool.
type serverMetric struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType
	value func(s *stats.Server) float64
}

func poolDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "pool", name), help, []string{"pool"}, nil)
}

func serverDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "server", name), help, []string{"pool", "server"}, nil)
}

func counter(n int64) float64 { return float64(n) }

func flag(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// poolMetrics are the stats JSON's pool counters, nutcracker's names with
// a shardproxy_pool_ prefix.
var poolMetrics = []poolMetric{
	{poolDesc("client_eof_total", "Client connections that ended with EOF or QUIT (client_eof)."),
		prometheus.CounterValue, func(p *stats.Pool) float64 { return counter(p.ClientEOF) }},
	{poolDesc("client_err_total", "Client connections closed for an error (client_err)."),
		prometheus.CounterValue, func(p *stats.Pool) float64 { return counter(p.ClientErr) }},
	{poolDesc("client_connections", "Client connections now (client_connections)."),
		prometheus.GaugeValue, func(p *stats.Pool) float64 { return counter(p.ClientConnections) }},
	{poolDesc("client_accepted_total", "Client connections accepted, refused ones included."),
		prometheus.CounterValue, func(p *stats.Pool) float64 { return counter(p.ClientAccepted) }},
	{poolDesc("client_refused_total", "Clients turned away at client_connections (client_refused)."),
		prometheus.CounterValue, func(p *stats.Pool) float64 { return counter(p.ClientRefused) }},
	{poolDesc("client_overflow_total", "Clients closed for holding more unread replies than client_output_limit (client_overflow)."),
		prometheus.CounterValue, func(p *stats.Pool) float64 { return counter(p.ClientOverflow) }},
	{poolDesc("client_parked", "Idle clients waiting without a goroutine now (client_parked)."),
		prometheus.GaugeValue, func(p *stats.Pool) float64 { return counter(p.ClientParked) }},
	{poolDesc("subscribers", "Clients subscribed (SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE) now."),
		prometheus.GaugeValue, func(p *stats.Pool) float64 { return float64(p.Subscribers) }},
	{poolDesc("subscriptions", "Channels, patterns and shard channels the pool's clients are subscribed to now, over all clients."),
		prometheus.GaugeValue, func(p *stats.Pool) float64 { return float64(p.Subscriptions) }},
	{poolDesc("client_buffered", "Clients holding a request buffer now (client_buffered)."),
		prometheus.GaugeValue, func(p *stats.Pool) float64 { return counter(p.ClientBuffered) }},
	{poolDesc("server_ejects_total", "Ejections of the pool's servers (server_ejects)."),
		prometheus.CounterValue, func(p *stats.Pool) float64 { return counter(p.ServerEjects) }},
	{poolDesc("forward_error_total", "Requests answered with an error instead of a server's reply: no server, server unavailable, ejected, timeout (forward_error)."),
		prometheus.CounterValue, func(p *stats.Pool) float64 { return counter(p.ForwardError) }},
	{poolDesc("fragments_total", "Fragments of multi-key requests split over several servers (fragments)."),
		prometheus.CounterValue, func(p *stats.Pool) float64 { return counter(p.Fragments) }},
	{poolDesc("requests_total", "Requests answered, local replies included (requests)."),
		prometheus.CounterValue, func(p *stats.Pool) float64 { return counter(p.Requests) }},
	{poolDesc("migration_pending", "Old owners a migration (migrate_from) has still to scan; 0 when complete or none (migration_pending)."),
		prometheus.GaugeValue, func(p *stats.Pool) float64 { return counter(p.MigrationPending) }},
	{poolDesc("keys_migrated_total", "Keys a migration moved, on access and in the background (keys_migrated)."),
		prometheus.CounterValue, func(p *stats.Pool) float64 { return counter(p.KeysMigrated) }},
	{poolDesc("migration_errors_total", "MIGRATEs and SCANs of a migration that failed (migration_errors)."),
		prometheus.CounterValue, func(p *stats.Pool) float64 { return counter(p.MigrationErrors) }},
	{poolDesc("migration_started", "1 once a migration (migrate_from) routes by the new placement (from its start_at), else 0 (migration_started)."),
		prometheus.GaugeValue, func(p *stats.Pool) float64 { return flag(p.MigrationStarted) }},
	{poolDesc("sentinels_up", "Sentinels the pool is subscribed to now for +switch-master (sentinels_up); 0 without sentinels."),
		prometheus.GaugeValue, func(p *stats.Pool) float64 { return float64(p.SentinelsUp) }},
	{poolDesc("ready", "1 when the pool is ready (see /readyz), else 0."),
		prometheus.GaugeValue, func(p *stats.Pool) float64 { ok, _ := p.Ready(); return flag(ok) }},
}

// serverMetrics are the stats JSON's server counters, nutcracker's names
// with a shardproxy_server_ prefix, and the server's state.
var serverMetrics = []serverMetric{
	{serverDesc("eof_total", "Server connections closed by the server (server_eof)."),
		prometheus.CounterValue, func(s *stats.Server) float64 { return counter(s.ServerEOF) }},
	{serverDesc("err_total", "Server connection errors, failed connects included (server_err)."),
		prometheus.CounterValue, func(s *stats.Server) float64 { return counter(s.ServerErr) }},
	{serverDesc("timedout_total", "Server connections closed for a reply's timeout (server_timedout)."),
		prometheus.CounterValue, func(s *stats.Server) float64 { return counter(s.ServerTimedout) }},
	{serverDesc("connections", "Server connections now (server_connections)."),
		prometheus.GaugeValue, func(s *stats.Server) float64 { return counter(s.ServerConnections) }},
	{serverDesc("connects_total", "Server connections made."),
		prometheus.CounterValue, func(s *stats.Server) float64 { return counter(s.Connects) }},
	{serverDesc("requests_total", "Requests queued for the server (requests)."),
		prometheus.CounterValue, func(s *stats.Server) float64 { return counter(s.Requests) }},
	{serverDesc("request_bytes_total", "Bytes of requests queued for the server (request_bytes)."),
		prometheus.CounterValue, func(s *stats.Server) float64 { return counter(s.RequestBytes) }},
	{serverDesc("responses_total", "Replies read from the server (responses)."),
		prometheus.CounterValue, func(s *stats.Server) float64 { return counter(s.Responses) }},
	{serverDesc("response_bytes_total", "Bytes of replies read from the server (response_bytes)."),
		prometheus.CounterValue, func(s *stats.Server) float64 { return counter(s.ResponseBytes) }},
	{serverDesc("pushes_dropped_total", "RESP3 push messages from the server that answered no request, dropped."),
		prometheus.CounterValue, func(s *stats.Server) float64 { return counter(s.PushesDropped) }},
	{serverDesc("sessions_open", "Session connections open now: those a client has to itself during a transaction or a blocking command."),
		prometheus.GaugeValue, func(s *stats.Server) float64 { return float64(s.SessionsOpen) }},
	{serverDesc("sessions_in_use", "Session connections in use now."),
		prometheus.GaugeValue, func(s *stats.Server) float64 { return float64(s.SessionsInUse) }},
	{serverDesc("session_refusals_total", "Sessions refused because the server had server_sessions session connections open."),
		prometheus.CounterValue, func(s *stats.Server) float64 { return counter(s.SessionRefusals) }},
	{serverDesc("in_queue", "Requests waiting to be written (in_queue)."),
		prometheus.GaugeValue, func(s *stats.Server) float64 { return float64(s.InQueue) }},
	{serverDesc("in_queue_bytes", "Bytes of requests waiting to be written (in_queue_bytes)."),
		prometheus.GaugeValue, func(s *stats.Server) float64 { return float64(s.InQueueBytes) }},
	{serverDesc("out_queue", "Requests written, waiting for their replies (out_queue)."),
		prometheus.GaugeValue, func(s *stats.Server) float64 { return float64(s.OutQueue) }},
	{serverDesc("out_queue_bytes", "Bytes of requests written, waiting for their replies (out_queue_bytes)."),
		prometheus.GaugeValue, func(s *stats.Server) float64 { return float64(s.OutQueueBytes) }},
	{serverDesc("ejected", "1 while the server is ejected (auto_eject_hosts), else 0."),
		prometheus.GaugeValue, func(s *stats.Server) float64 { return flag(s.Ejected) }},
	{serverDesc("down", "1 while the server is not known to serve (no connection to it or check of it succeeded yet, or the last one failed), else 0."),
		prometheus.GaugeValue, func(s *stats.Server) float64 { return flag(s.Down) }},
	{serverDesc("last_ejection_timestamp_seconds", "When the server was last ejected, in seconds since the epoch; 0 when never (server_ejected_at)."),
		prometheus.GaugeValue, func(s *stats.Server) float64 { return float64(s.ServerEjectedAt) / 1e6 }},
}

var (
	commandRequestsDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "command", "requests_total"),
		`Requests per command; command is a name of the proxy's command table, "unknown" for any other.`,
		[]string{"pool", "command"}, nil)
	commandErrorsDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "command", "errors_total"),
		"Requests per command answered by an error: the server's, the proxy's own, or a forwarding error.",
		[]string{"pool", "command"}, nil)
	commandLatencyDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "command", "duration_seconds"),
		"Time per command from the read that brought a request to the write of its reply, as the client sees it.",
		[]string{"pool", "command"}, nil)
	primaryDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "server", "primary"),
		"1 for the address a server of a pool with sentinels is dialled at: its master's primary now.",
		[]string{"pool", "server", "addr"}, nil)
	failoversDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "server", "failovers_total"),
		"Moves of a server of a pool with sentinels to another primary (failovers).",
		[]string{"pool", "server"}, nil)
	latencyDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "server", "request_duration_seconds"),
		"Time from a request's enqueueing for the server to its reply; failed requests are not in it.",
		[]string{"pool", "server"}, nil)
	configInfoDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "config", "info"),
		"The running configuration file's digest, as the label digest; the value is 1.",
		[]string{"digest"}, nil)
	reloadsDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "config", "reloads_total"),
		"Configuration reloads applied.", nil, nil)
	reloadFailuresDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "config", "reload_failures_total"),
		"Configuration reloads refused; a refused reload changes nothing.", nil, nil)
	lastReloadSuccessfulDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "config", "last_reload_successful"),
		"0 when the last configuration reload tried was refused, else 1.", nil, nil)
	lastReloadTimeDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "config", "last_reload_timestamp_seconds"),
		"When a configuration reload was last tried, in seconds since the epoch; 0 when never.", nil, nil)
	buildInfoDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "build_info"),
		"shardproxy's version, as the label version; the value is 1.", []string{"version"}, nil)
)

// collector turns a Source's snapshot into constant metrics at each scrape.
type collector struct {
	src Source
}

// NewCollector returns a collector of src's metrics, named shardproxy_*.
func NewCollector(src Source) prometheus.Collector { return &collector{src: src} }

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range poolMetrics {
		ch <- m.desc
	}
	for _, m := range serverMetrics {
		ch <- m.desc
	}
	for _, d := range []*prometheus.Desc{commandRequestsDesc, commandErrorsDesc, commandLatencyDesc, primaryDesc, failoversDesc, latencyDesc, configInfoDesc, reloadsDesc,
		reloadFailuresDesc, lastReloadSuccessfulDesc, lastReloadTimeDesc, buildInfoDesc} {
		ch <- d
	}
	describeCluster(ch)
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	snap := c.src.Snapshot()
	collectConfig(ch, snap.Version, &snap.Config)
	for i := range snap.Pools {
		p := &snap.Pools[i]
		for _, m := range poolMetrics {
			ch <- prometheus.MustNewConstMetric(m.desc, m.typ, m.value(p), p.Name)
		}
		collectCluster(ch, p)
		for j := range p.Commands {
			cmd := &p.Commands[j]
			ch <- prometheus.MustNewConstMetric(commandRequestsDesc, prometheus.CounterValue, float64(cmd.Requests), p.Name, cmd.Name)
			ch <- prometheus.MustNewConstMetric(commandErrorsDesc, prometheus.CounterValue, float64(cmd.Errors), p.Name, cmd.Name)
			ch <- histogram(commandLatencyDesc, &cmd.Latency, p.Name, cmd.Name)
		}
		for j := range p.Servers {
			s := &p.Servers[j]
			for _, m := range serverMetrics {
				ch <- prometheus.MustNewConstMetric(m.desc, m.typ, m.value(s), p.Name, s.Name)
			}
			ch <- histogram(latencyDesc, &s.Latency, p.Name, s.Name)
			if p.Sentinel {
				ch <- prometheus.MustNewConstMetric(primaryDesc, prometheus.GaugeValue, 1, p.Name, s.Name, s.Addr)
				ch <- prometheus.MustNewConstMetric(failoversDesc, prometheus.CounterValue, float64(s.Failovers), p.Name, s.Name)
			}
		}
	}
}

func collectConfig(ch chan<- prometheus.Metric, version string, cfg *stats.Config) {
	ch <- prometheus.MustNewConstMetric(buildInfoDesc, prometheus.GaugeValue, 1, version)
	ch <- prometheus.MustNewConstMetric(configInfoDesc, prometheus.GaugeValue, 1, cfg.Digest)
	ch <- prometheus.MustNewConstMetric(reloadsDesc, prometheus.CounterValue, float64(cfg.Reloads))
	ch <- prometheus.MustNewConstMetric(reloadFailuresDesc, prometheus.CounterValue, float64(cfg.ReloadFailures))
	ch <- prometheus.MustNewConstMetric(lastReloadSuccessfulDesc, prometheus.GaugeValue, flag(!cfg.LastReloadFailed))
	var at float64
	if !cfg.LastReloadAt.IsZero() {
		at = float64(cfg.LastReloadAt.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(lastReloadTimeDesc, prometheus.GaugeValue, at)
}

// histogram makes a latency (a server's, a command's) a Prometheus
// histogram of desc, whose buckets are cumulative.
func histogram(desc *prometheus.Desc, l *stats.Latency, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(l.Bounds))
	var cum uint64
	for i, b := range l.Bounds {
		cum += l.Buckets[i]
		buckets[b.Seconds()] = cum
	}
	return prometheus.MustNewConstHistogram(desc, l.Count(), l.Sum.Seconds(), buckets, labels...)
}
