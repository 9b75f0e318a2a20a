package main

import (
	"log/slog"
	"os"
	"runtime"
)

// setThreads sets how many threads run the proxy's goroutines. By default
// it takes half the cores available (at least one): a proxy's work is mostly
// system calls on loopback or local sockets, and measured on two cores next
// to its servers and clients, one thread gives more requests per second and
// less CPU per request than two, because goroutines hand work to each other
// without waking a second thread. GOMAXPROCS in the environment or -T wins.
func setThreads(n int, log *slog.Logger) {
	switch {
	case n > 0:
		runtime.GOMAXPROCS(n)
	case os.Getenv("GOMAXPROCS") != "":
	default:
		runtime.GOMAXPROCS(max(1, runtime.GOMAXPROCS(0)/2))
	}
	log.Info("threads", "gomaxprocs", runtime.GOMAXPROCS(0), "cores", runtime.NumCPU())
}
