#!/usr/bin/env bash
# test.sh: runs every test of shardproxy on a fresh Debian machine.
#
# It installs what the tests use when it is missing (redis-server,
# redis-sentinel, memcached, nutcracker, memcslap, promtool, systemd-analyze
# (deploy/shardproxy.service's check), node and npm,
# Debian's python3-rq, and node-redis and BullMQ with npm), then runs
# gofmt, go vet, go mod tidy -diff, staticcheck (installed with go install
# when missing), the unit and integration tests (which start their own
# redis-server, redis-sentinel, memcached and nutcracker processes on free
# loopback ports and stop them), a short run of every fuzz target, and a
# smoke run of the benchmark.
#
#   ./test.sh            everything
#   ./test.sh -short     skip the fuzz and benchmark smoke runs
set -euo pipefail
cd "$(dirname "$0")"

short=0
[ "${1:-}" = "-short" ] && short=1

export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"

install_missing() {
	local missing=()
	command -v redis-server >/dev/null || missing+=(redis-server)
	command -v redis-sentinel >/dev/null || missing+=(redis-sentinel)
	command -v memcached >/dev/null || missing+=(memcached)
	command -v nutcracker >/dev/null || missing+=(nutcracker)
	command -v memcslap >/dev/null || missing+=(libmemcached-tools)
	command -v promtool >/dev/null || missing+=(prometheus)
	command -v systemd-analyze >/dev/null || missing+=(systemd)
	command -v node >/dev/null || missing+=(nodejs)
	command -v npm >/dev/null || missing+=(npm)
	# RQ for Debian's own python3, the one its rq command runs with.
	{ [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import rq' 2>/dev/null; } || missing+=(python3-rq)
	if [ ${#missing[@]} -gt 0 ]; then
		echo "== installing ${missing[*]}"
		local sudo=""
		[ "$(id -u)" -ne 0 ] && sudo=sudo
		$sudo apt-get update -qq
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
	command -v go >/dev/null || { echo "go is not installed (Go 1.26 is needed)"; exit 1; }
}

install_missing

# node-redis 5, which the RESP3 client tests run, at the version its
# package-lock.json pins, once, in a directory git ignores.
node_redis=proxy/testdata/node-redis
if [ ! -f "$node_redis/node_modules/redis/package.json" ]; then
	echo "== installing node-redis into $node_redis"
	npm ci --prefix "$node_redis" --no-audit --no-fund >/dev/null
fi

# BullMQ 5, which the application tests run, the same way.
bullmq=proxy/testdata/bullmq
if [ ! -f "$bullmq/node_modules/bullmq/package.json" ]; then
	echo "== installing BullMQ into $bullmq"
	npm ci --prefix "$bullmq" --no-audit --no-fund >/dev/null
fi

echo "== gofmt"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$bad" ]; then
	echo "gofmt needed on:"; echo "$bad"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== cross builds"
# Linux is the fast path; other Unix systems (darwin here) and Windows build
# with internal/sockio's plain fallback, tests included (go vet type-checks
# them). The bench and most of cmd/shardproxy's tests are Linux only.
for os in linux darwin windows; do
	GOOS=$os go build ./...
	GOOS=$os go vet ./...
done

echo "== go mod tidy -diff"
if ! go mod tidy -diff; then
	echo "go.mod or go.sum is not tidy: run go mod tidy"; exit 1
fi

echo "== staticcheck"
# staticcheck@v0.8.2 from $GOBIN, $(go env GOPATH)/bin or $PATH; when none
# of them has that version, go install puts it in the first of the two.
staticcheck_version=v0.8.2
gobin=$(go env GOBIN)
[ -n "$gobin" ] || gobin="$(go env GOPATH | cut -d: -f1)/bin"
staticcheck=""
for bin in "$gobin/staticcheck" "$(command -v staticcheck || true)"; do
	if [ -x "$bin" ] && "$bin" -version 2>/dev/null | grep -qF "(${staticcheck_version#v})"; then
		staticcheck=$bin
		break
	fi
done
if [ -z "$staticcheck" ]; then
	echo "-- installing staticcheck@$staticcheck_version into $gobin"
	GOBIN="$gobin" go install "honnef.co/go/tools/cmd/staticcheck@$staticcheck_version"
	staticcheck="$gobin/staticcheck"
fi
"$staticcheck" ./...

echo "== go test"
go test -count=1 -timeout 15m ./...

echo "== go test -race (proxy, commands, pools, sentinel, failover, migration, codecs, memtrim)"
# The Redis Cluster operations tests (reshards, kills, failovers of clusters
# of their own; a minute without -race) run in the plain pass only: the
# cluster pool's code runs under -race in the other cluster tests.
go test -race -count=1 -timeout 15m -skip '^TestClusterOps' ./proxy/ ./commands/ ./pools/ ./sentinel/ ./failover/ ./migration/ ./codec/... ./internal/memtrim/

if [ "$short" = 1 ]; then
	exit 0
fi

echo "== fuzz (short runs of every fuzz target)"
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		echo "-- $pkg $target"
		if ! go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime 10s -fuzzminimizetime 2s >/tmp/fuzz.$$.log 2>&1; then
			# Go's fuzzer can stop with "context deadline exceeded" when its
			# time runs out while it minimises a new (not failing) input;
			# only a reported failing input is a failure.
			if grep -q "Failing input written" /tmp/fuzz.$$.log || ! grep -q "context deadline exceeded" /tmp/fuzz.$$.log; then
				cat /tmp/fuzz.$$.log
				exit 1
			fi
			echo "   (stopped while minimising an input; no failure found)"
		fi
	done
done
rm -f /tmp/fuzz.$$.log

echo "== benchmark smoke run"
go run ./bench -quick
