package main

import (
	"log/slog"
	"runtime"
)

// setThreads sets how many threads run the proxy's goroutines: n when it is
// above 0, else Go's own choice (GOMAXPROCS in the environment, else every
// core the process may use, within its cgroup's CPU limit). On a machine it
// shares with its servers and clients, as the demo and the benchmark run it,
// fewer threads (-T 1) give more requests per second for less CPU, since
// goroutines then hand work to each other without waking another thread.
func setThreads(n int, log *slog.Logger) {
	if n > 0 {
		runtime.GOMAXPROCS(n)
	}
	log.Info("threads", "gomaxprocs", runtime.GOMAXPROCS(0), "cores", runtime.NumCPU())
}
