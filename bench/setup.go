//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// target is one of the three things measured side by side.
type target int

const (
	direct     target = iota // one backend server, no proxy: the limit
	nutcracker               // twemproxy
	shardproxy               // the proxy under test
	hop                      // a bare forwarder in front of direct's server (large values only)
	numTargets
)

var targetNames = [numTargets]string{"direct", "nutcracker", "shardproxy", "bare hop"}

// backends is the number of servers in each pool.
const backends = 4

// cluster is the set of running servers: per target, the address to benchmark
// and the process whose CPU and memory are sampled (0 for direct).
type cluster struct {
	redis    [numTargets]string
	memcache [numTargets]string
	pid      [numTargets]int
	hop      string // the bare forwarder's address, when the large section runs
}

// setup starts the backends the chosen sections need, then nutcracker and
// shardproxy with identical pool configs, and waits until all listen.
func setup(ctx context.Context, p *procs, o *options) (*cluster, error) {
	var cl cluster
	var redisPorts, mcPorts []int
	var err error
	if o.sections["redis"] || o.sections["idle"] || o.sections["large"] || o.sections["apps"] {
		if redisPorts, err = startBackends(p, "redis", startRedis); err != nil {
			return nil, err
		}
		cl.redis[direct] = addrOf(redisPorts[0])
	}
	if o.sections["memcache"] {
		if mcPorts, err = startBackends(p, "memcached", startMemcached); err != nil {
			return nil, err
		}
		cl.memcache[direct] = addrOf(mcPorts[0])
	}
	bins := map[target]string{nutcracker: o.nutcrackerBin, shardproxy: o.proxyBin}
	flags := map[target][]string{shardproxy: o.proxyFlags}
	for _, t := range []target{nutcracker, shardproxy} {
		pid, rAddr, mAddr, err := startProxy(p, t, bins[t], redisPorts, mcPorts, flags[t]...)
		if err != nil {
			return nil, err
		}
		cl.pid[t], cl.redis[t], cl.memcache[t] = pid, rAddr, mAddr
	}
	if o.sections["large"] {
		if cl.pid[hop], cl.hop, err = startHop(p, cl.redis[direct]); err != nil {
			return nil, err
		}
	}
	return &cl, nil
}

func addrOf(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

type starter func(p *procs, i, port int) (*exec.Cmd, error)

// startBackends starts the pool's servers on free loopback ports.
func startBackends(p *procs, kind string, start starter) ([]int, error) {
	ports := make([]int, backends)
	for i := range ports {
		port, err := p.freePort()
		if err != nil {
			return nil, err
		}
		cmd, err := start(p, i, port)
		if err != nil {
			return nil, err
		}
		if err := waitListening(cmd, addrOf(port), 10*time.Second); err != nil {
			return nil, fmt.Errorf("%s %d: %w", kind, i, err)
		}
		ports[i] = port
	}
	return ports, nil
}

func startRedis(p *procs, i, port int) (*exec.Cmd, error) {
	return p.start(fmt.Sprintf("redis%d.log", i), "redis-server", "--port", strconv.Itoa(port),
		"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no",
		"--protected-mode", "no", "--loglevel", "warning", "--dir", p.dir)
}

func startMemcached(p *procs, i, port int) (*exec.Cmd, error) {
	args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-m", "256", "-t", "1"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	return p.start(fmt.Sprintf("memcached%d.log", i), "memcached", args...)
}

// startProxy writes the proxy's YAML, starts it with nutcracker's flags and
// then flags, and waits for its pool listeners and stats port.
func startProxy(p *procs, t target, bin string, redisPorts, mcPorts []int, flags ...string) (int, string, string, error) {
	name := targetNames[t]
	var yaml strings.Builder
	var rAddr, mAddr string
	wait := []string{}
	for _, pool := range []struct {
		name  string
		redis bool
		ports []int
		addr  *string
	}{{"bench_redis", true, redisPorts, &rAddr}, {"bench_memcache", false, mcPorts, &mAddr}} {
		if len(pool.ports) == 0 {
			continue
		}
		port, err := p.freePort()
		if err != nil {
			return 0, "", "", err
		}
		*pool.addr = addrOf(port)
		wait = append(wait, *pool.addr)
		writePool(&yaml, pool.name, *pool.addr, pool.redis, pool.ports)
	}
	conf := filepath.Join(p.dir, name+".yml")
	if err := os.WriteFile(conf, []byte(yaml.String()), 0o644); err != nil {
		return 0, "", "", fmt.Errorf("%s config: %w", name, err)
	}
	stats, err := p.freePort()
	if err != nil {
		return 0, "", "", err
	}
	logFile := filepath.Join(p.dir, name+".log")
	args := append([]string{"-c", conf, "-s", strconv.Itoa(stats), "-a", "127.0.0.1", "-o", logFile}, flags...)
	cmd, err := p.start(name+".out", bin, args...)
	if err != nil {
		return 0, "", "", err
	}
	for _, a := range append(wait, addrOf(stats)) {
		if err := waitListening(cmd, a, 10*time.Second); err != nil {
			log, _ := os.ReadFile(logFile)
			out, _ := os.ReadFile(filepath.Join(p.dir, name+".out"))
			return 0, "", "", fmt.Errorf("%s: %w\n%s%s", name, err, tail(log, 10), tail(out, 10))
		}
	}
	return cmd.Process.Pid, rAddr, mAddr, nil
}

// proxyFlags returns the flags shardproxy runs with here: -T 1, one thread,
// since it shares the machine with the servers and the load generators, and
// there one thread gives more requests per second for less CPU than one per
// core (its default). A -proxy-bin that is not shardproxy (a second
// nutcracker standing in) gets none: nutcracker refuses -T.
func proxyFlags(bin string) []string {
	if !isShardproxy(bin) {
		return nil
	}
	return []string{"-T", "1"}
}

// writePool appends one pool in nutcracker's YAML format; nutcracker and
// shardproxy get the same pools, only the listen ports differ.
func writePool(b *strings.Builder, name, listen string, redis bool, ports []int) {
	fmt.Fprintf(b, "%s:\n  listen: %s\n  redis: %t\n", name, listen, redis)
	b.WriteString("  hash: fnv1a_64\n  distribution: ketama\n  hash_tag: \"{}\"\n")
	b.WriteString("  server_connections: 1\n  auto_eject_hosts: false\n  timeout: 10000\n")
	b.WriteString("  servers:\n")
	for i, port := range ports {
		fmt.Fprintf(b, "    - 127.0.0.1:%d:1 s%d\n", port, i)
	}
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	s := strings.Join(lines, "\n")
	if s != "" {
		s += "\n"
	}
	return s
}
