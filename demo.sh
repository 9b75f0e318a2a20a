#!/usr/bin/env bash
# demo.sh: a working shardproxy demo on a fresh Debian machine.
#
#   ./demo.sh            Redis: 4 redis-server on 127.0.0.1:7001-7004, the proxy on
#                        127.0.0.1:22121 (configs/demo.yml), then redis-benchmark through it
#   ./demo.sh memcache   memcache: 4 memcached on 127.0.0.1:11311-11314, the proxy on
#                        127.0.0.1:22122 (configs/memcache.yml), then memcslap through it
#   ./demo.sh stop       stops what the demo started
#
# It installs redis-server / memcached / memcslap when missing and leaves the
# proxy running so you can try it: redis-cli -p 22121.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"
run=/tmp/shardproxy-demo
mkdir -p "$run"

need() { # need COMMAND PACKAGE
	command -v "$1" >/dev/null && return
	local sudo=""
	[ "$(id -u)" -ne 0 ] && sudo=sudo
	echo "== installing $2"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$2" >/dev/null
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
	for _ in $(seq 100); do listening "$1" && return 0; sleep 0.1; done
	echo "nothing listens on 127.0.0.1:$1"; exit 1
}

# stop_pid PIDFILE: stops the process and waits (up to 5 s) until it is
# gone, so that a demo started right after finds its ports free.
stop_pid() {
	local pid
	pid=$(cat "$1")
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	rm -f "$1"
}

stop() {
	for f in "$run"/*.pid; do
		[ -e "$f" ] || continue
		stop_pid "$f"
	done
	echo "demo stopped"
}

start_proxy() { # start_proxy CONFIG PORT
	echo "== building shardproxy"
	go build -o "$run/shardproxy" ./cmd/shardproxy
	if [ -e "$run/proxy-$2.pid" ]; then stop_pid "$run/proxy-$2.pid"; fi
	if listening "$2"; then
		echo "demo.sh: port $2 is in use by another process; stop it first" >&2
		exit 1
	fi
	"$run/shardproxy" -t -c "$1"
	# -T 1: the proxy shares this machine with the servers and the load
	# generator, and there one thread gives more requests per second for
	# less CPU than one per core (its default).
	"$run/shardproxy" -c "$1" -s $(($2 + 100)) -a 127.0.0.1 -o "$run/proxy-$2.log" -T 1 </dev/null >/dev/null 2>&1 &
	echo $! >"$run/proxy-$2.pid"
	wait_port "$2"
	if ! kill -0 "$(cat "$run/proxy-$2.pid")" 2>/dev/null; then
		echo "demo.sh: shardproxy exited; its log:" >&2
		tail -n 20 "$run/proxy-$2.log" >&2
		exit 1
	fi
}

redis_demo() {
	need redis-server redis-server
	need redis-benchmark redis-tools
	for port in 7001 7002 7003 7004; do
		if ! listening $port; then
			redis-server --port $port --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
				--pidfile "$run/redis-$port.pid" --logfile "$run/redis-$port.log"
		fi
		wait_port $port
	done
	start_proxy configs/demo.yml 22121
	echo "== redis-benchmark through the proxy (127.0.0.1:22121)"
	redis-benchmark -h 127.0.0.1 -p 22121 -c 50 -n 100000 -r 100000 -P 16 -q -t set,get,incr,lpush,lpop,sadd,mset 2>&1 |
		tr '\r' '\n' | grep "requests per second"
	redis-cli -p 22121 mset '{user:1}:name' ada '{user:1}:lang' go city paris >/dev/null
	echo "== redis-cli -p 22121 mget '{user:1}:name' '{user:1}:lang' city"
	redis-cli -p 22121 mget '{user:1}:name' '{user:1}:lang' city
	echo
	echo "The proxy is running on 127.0.0.1:22121 (stats: nc 127.0.0.1 22221). Try: redis-cli -p 22121"
	echo "Stop everything with: ./demo.sh stop"
}

memcache_demo() {
	need memcached memcached
	need memcslap libmemcached-tools
	for port in 11311 11312 11313 11314; do
		if ! listening $port; then
			memcached -d -l 127.0.0.1 -p $port -U 0 -m 64 -u "$(id -un)" -P "$run/memcached-$port.pid"
		fi
		wait_port $port
	done
	start_proxy configs/memcache.yml 22122
	echo "== memcslap through the proxy (127.0.0.1:22122)"
	memcslap --servers=127.0.0.1:22122 --concurrency=50 --execute-number=2000 --test=set
	memcslap --servers=127.0.0.1:22122 --concurrency=50 --execute-number=2000 --test=get
	echo
	echo "The proxy is running on 127.0.0.1:22122. Try (with netcat installed): printf 'get a\\r\\n' | nc -q1 127.0.0.1 22122"
	echo "Stop everything with: ./demo.sh stop"
}

case "${1:-redis}" in
redis) redis_demo ;;
memcache) memcache_demo ;;
stop) stop ;;
*) echo "usage: $0 [redis|memcache|stop]"; exit 2 ;;
esac
