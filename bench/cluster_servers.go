//go:build linux

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardproxy/shardproxy/internal/freeport"
)

const (
	// clusterPrimaries is the number of primaries of the bench's Redis
	// Cluster (no replicas: the bench measures serving, not failover). Three
	// is the fewest redis-cli --cluster create accepts.
	clusterPrimaries = 3
	// clusterBusOffset is what Redis adds to a node's port for its cluster
	// bus port, which must be free too.
	clusterBusOffset = 10000
	// clusterUpTimeout bounds the wait for cluster_state:ok on every node.
	clusterUpTimeout = 30 * time.Second
)

// redisCluster is a running Redis Cluster of redis-servers started by the
// bench: every node is a primary.
type redisCluster struct {
	addrs []string // the nodes, host:port
	pids  []int    // their processes, whose CPU is sampled
}

// startRedisCluster starts clusterPrimaries cluster-enabled redis-servers
// (persistence off, each with a data directory of its own under the scratch
// dir, for its nodes.conf), joins them with redis-cli --cluster create and
// waits until every node reports cluster_state:ok.
func startRedisCluster(ctx context.Context, p *procs, name string) (*redisCluster, error) {
	rc := &redisCluster{}
	for i := range clusterPrimaries {
		port, err := p.freeClusterPort()
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(p.dir, fmt.Sprintf("%s%d", name, i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("cluster node dir: %w", err)
		}
		cmd, err := p.start(fmt.Sprintf("%s%d.log", name, i), "redis-server", "--port", strconv.Itoa(port),
			"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no",
			"--protected-mode", "no", "--loglevel", "warning", "--dir", dir,
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000")
		if err != nil {
			return nil, err
		}
		if err := waitListening(cmd, addrOf(port), 10*time.Second); err != nil {
			return nil, fmt.Errorf("cluster node %d: %w", i, err)
		}
		rc.addrs = append(rc.addrs, addrOf(port))
		rc.pids = append(rc.pids, cmd.Process.Pid)
	}
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	args := append(append([]string{"--cluster", "create"}, rc.addrs...), "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(cctx, "redis-cli", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("redis-cli %s: %w\n%s", strings.Join(args, " "), err, tail(out, 10))
	}
	if err := waitClusterOK(ctx, rc.addrs, clusterUpTimeout); err != nil {
		return nil, err
	}
	return rc, nil
}

// freeClusterPort returns a free port, as freePort does, whose cluster bus
// port (port + clusterBusOffset) is free too and below the ephemeral range,
// so that no outgoing connection takes it before the node listens there.
func (p *procs) freeClusterPort() (int, error) {
	low := freeport.EphemeralLow()
	port, err := freeport.Pick("127.0.0.1", func(port int) bool {
		bus := port + clusterBusOffset
		return p.ports[port] || p.ports[bus] || bus >= low || !canListen(bus)
	})
	if err != nil {
		return 0, fmt.Errorf("free cluster port: %w", err)
	}
	p.ports[port], p.ports[port+clusterBusOffset] = true, true
	return port, nil
}

// canListen reports whether a loopback port accepted a listen just now.
func canListen(port int) bool {
	ln, err := net.Listen("tcp", addrOf(port))
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

// waitClusterOK waits until CLUSTER INFO says cluster_state:ok on every
// node: each of them then has every slot covered in its own view.
func waitClusterOK(ctx context.Context, addrs []string, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a, Protocol: 2, DisableIdentity: true, MaxRetries: -1})
		err := waitNodeOK(ctx, c)
		_ = c.Close()
		if err != nil {
			return fmt.Errorf("cluster node %s: %w", a, err)
		}
	}
	return nil
}

// waitNodeOK polls one node's CLUSTER INFO until it says cluster_state:ok.
func waitNodeOK(ctx context.Context, c *redis.Client) error {
	last := ""
	for {
		info, err := c.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = "not cluster_state:ok"
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %s)", ctx.Err(), last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
