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
	hop                      // a bare forwarder in front of direct's server (SET/GET and large values only)
	numTargets
)

var targetNames = [numTargets]string{"direct", "nutcracker", "shardproxy", "bare hop"}

// backends is the number of servers in each pool.
const backends = 4

// cluster is the set of running servers: per target, the address to benchmark
// and the process whose CPU and memory are sampled. Both proxies serve a Redis
// and a memcache pool from one process, so pid holds the proxies (and the bare
// hop); direct's process depends on the protocol: redisPid, memcachePid.
type cluster struct {
	redis       [numTargets]string
	memcache    [numTargets]string
	pid         [numTargets]int // 0 for direct
	redisPid    int             // direct's redis-server: the first of the pool
	memcachePid int             // direct's memcached: the first of the pool
	hop         string          // the bare forwarder's address, when the redis or large section runs
}

// endpoints are what the legs of a throughput row talk to: per target, an
// address ("" for a target the row leaves out, as the bare hop in the rows
// without one) and the process whose CPU is sampled around each run (0
// for none).
type endpoints struct {
	addr [numTargets]string
	pid  [numTargets]int
}

// redisEndpoints are the Redis pools, and direct's redis-server.
func (cl *cluster) redisEndpoints() endpoints {
	ep := endpoints{addr: cl.redis, pid: cl.pid}
	ep.addr[hop], ep.pid[direct] = "", cl.redisPid
	return ep
}

// memcacheEndpoints are the memcache pools, and direct's memcached.
func (cl *cluster) memcacheEndpoints() endpoints {
	ep := endpoints{addr: cl.memcache, pid: cl.pid}
	ep.addr[hop], ep.pid[direct] = "", cl.memcachePid
	return ep
}

// setup starts the backends the chosen sections need, then nutcracker and
// shardproxy with identical pool configs, and waits until all listen.
func setup(ctx context.Context, p *procs, o *options) (*cluster, error) {
	var cl cluster
	var redisPorts, mcPorts, pids []int
	var err error
	if o.sections["redis"] || o.sections["idle"] || o.sections["large"] || o.sections["apps"] {
		if redisPorts, pids, err = startBackends(p, "redis", backends, startRedis); err != nil {
			return nil, err
		}
		cl.redis[direct], cl.redisPid = addrOf(redisPorts[0]), pids[0]
	}
	if o.sections["memcache"] {
		if mcPorts, pids, err = startBackends(p, "memcached", backends, startMemcached); err != nil {
			return nil, err
		}
		cl.memcache[direct], cl.memcachePid = addrOf(mcPorts[0]), pids[0]
	}
	for _, t := range []target{nutcracker, shardproxy} {
		bin, flags := proxyCommand(o, t)
		pid, rAddr, mAddr, err := startProxy(p, targetNames[t], bin, redisPorts, mcPorts, flags...)
		if err != nil {
			return nil, err
		}
		cl.pid[t], cl.redis[t], cl.memcache[t] = pid, rAddr, mAddr
	}
	if o.sections["redis"] || o.sections["large"] {
		if cl.pid[hop], cl.hop, err = startHop(p, cl.redis[direct]); err != nil {
			return nil, err
		}
	}
	return &cl, nil
}

func addrOf(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

type starter func(p *procs, i, port int) (*exec.Cmd, error)

// startBackends starts n servers of a pool on free loopback ports, all of
// them before waiting for each to listen, and returns their ports and pids.
func startBackends(p *procs, kind string, n int, start starter) ([]int, []int, error) {
	ports, pids := make([]int, n), make([]int, n)
	cmds := make([]*exec.Cmd, n)
	for i := range ports {
		port, err := p.freePort()
		if err != nil {
			return nil, nil, err
		}
		if cmds[i], err = start(p, i, port); err != nil {
			return nil, nil, err
		}
		ports[i], pids[i] = port, cmds[i].Process.Pid
	}
	for i, cmd := range cmds {
		if err := waitListening(cmd, addrOf(ports[i]), 10*time.Second); err != nil {
			return nil, nil, fmt.Errorf("%s %d: %w", kind, i, err)
		}
	}
	return ports, pids, nil
}

func startRedis(p *procs, i, port int) (*exec.Cmd, error) {
	return p.start(fmt.Sprintf("redis%d.log", i), "redis-server", redisArgs(p, port)...)
}

// redisArgs is the command line of a redis-server of a pool: loopback,
// persistence off.
func redisArgs(p *procs, port int) []string {
	return []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--daemonize", "no", "--protected-mode", "no", "--loglevel", "warning", "--dir", p.dir}
}

func startMemcached(p *procs, i, port int) (*exec.Cmd, error) {
	args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-m", "256", "-t", "1"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	return p.start(fmt.Sprintf("memcached%d.log", i), "memcached", args...)
}

// startProxy writes the proxy's YAML, starts it with nutcracker's flags and
// then flags, and waits for its pool listeners and stats port. name names
// its config and log files in the scratch dir.
func startProxy(p *procs, name, bin string, redisPorts, mcPorts []int, flags ...string) (int, string, string, error) {
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

// proxyCommand returns the binary of proxy t and the flags it runs with
// besides the config's.
func proxyCommand(o *options, t target) (string, []string) {
	if t == shardproxy {
		return o.proxyBin, o.proxyFlags
	}
	return o.nutcrackerBin, nil
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
