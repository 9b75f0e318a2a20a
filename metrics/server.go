package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// shutdownTimeout bounds how long Close waits for scrapes in progress.
const shutdownTimeout = 5 * time.Second

// Server serves /metrics, /healthz, /readyz and /readyz/<pool> on one
// listener.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{} // closed when Serve has returned
}

// Listen opens a TCP listener on addr (host:port; port 0 picks one) and
// serves src's metrics on it until Close. logger may be nil.
func Listen(addr string, src Source, logger *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return Serve(ln, src, logger), nil
}

// Serve serves src's metrics on ln, a listener opened elsewhere (one a
// binary upgrade handed over), until Close, which closes ln. logger may
// be nil.
func Serve(ln net.Listener, src Source, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		ln: ln,
		srv: &http.Server{
			Handler:           Handler(src),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics listener", "err", err)
		}
	}()
	logger.Info("metrics listening", "addr", ln.Addr().String())
	return s
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops listening, waits up to 5 s for scrapes in progress, closes
// every connection and returns once the server's goroutines have ended.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = s.srv.Close()
	}
	<-s.done
	return err
}

// Handler serves /metrics (src's metrics, the Go runtime's and the
// process's, from a registry of its own), /healthz, /readyz (every pool)
// and /readyz/<pool> (one pool).
func Handler(src Source) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		NewCollector(src),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ready, body := readiness(src)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprint(w, body)
	})
	mux.HandleFunc("GET /readyz/{pool...}", func(w http.ResponseWriter, r *http.Request) {
		code, body := poolReadiness(src, r.PathValue("pool"))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		fmt.Fprint(w, body)
	})
	return mux
}

// poolReadiness answers /readyz/<pool>, for a load balancer in front of
// one pool: 200 "<pool>: ready", 503 "<pool>: not ready: <reason>", or
// 404 when no running pool has that name.
func poolReadiness(src Source, name string) (int, string) {
	snap := src.Snapshot()
	for i := range snap.Pools {
		p := &snap.Pools[i]
		if p.Name != name {
			continue
		}
		if ok, why := p.Ready(); !ok {
			return http.StatusServiceUnavailable, fmt.Sprintf("%s: not ready: %s\n", p.Name, why)
		}
		return http.StatusOK, p.Name + ": ready\n"
	}
	return http.StatusNotFound, fmt.Sprintf("no pool %q\n", name)
}

// readiness says whether every pool of src is ready, with one line per
// pool: "<pool>: ready" or "<pool>: not ready: <reason>".
func readiness(src Source) (bool, string) {
	snap := src.Snapshot()
	all := true
	var b strings.Builder
	for i := range snap.Pools {
		p := &snap.Pools[i]
		ok, why := p.Ready()
		if ok {
			fmt.Fprintf(&b, "%s: ready\n", p.Name)
			continue
		}
		all = false
		fmt.Fprintf(&b, "%s: not ready: %s\n", p.Name, why)
	}
	return all, b.String()
}
