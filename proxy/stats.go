package proxy

import (
	"errors"
	"net"
	"os"
	"time"

	"github.com/shardproxy/shardproxy/stats"
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
		host, _ := os.Hostname()
		c.Write(stats.Render(px.Snapshot(), started, host))
		c.Close()
	}
}
