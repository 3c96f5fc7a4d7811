#!/usr/bin/env bash
# Pauses while the keyspace grows: SET of keys `key:0` .. `key:N-1` once each at P1 into
# a fresh server, then the load's latency percentiles (p99.9, p99.99, max) and the
# table-growth events the latency monitor kept (milliseconds, worst per second).
#
#   benches/growth.sh [BINARY] [KEYS] [CLIENTS] [SHARDS]
#     BINARY   tessera-server to start (default target/release/tessera-server)
#     KEYS     keys loaded (default 10000000)
#     CLIENTS  connections, each one request in flight (default 8)
#     SHARDS   server shards (default 2)
# Builds the release binaries first (a no-op when they are current). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=${1:-target/release/tessera-server}
keys=${2:-10000000}
clients=${3:-8}
shards=${4:-2}
cargo build --release -q -p tessera-server -p tessera-bench -p tessera-cli --bins

out=$(mktemp)
"$binary" --port 0 --resp no --metrics no --shards "$shards" --appendonly no \
  --log-level warn --latency-monitor-threshold 1 >"$out" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 50); do grep -q listening "$out" && break; sleep 0.1; done
port=$(sed -n 's/^listening on .*://p' "$out")

target/release/tessera-bench -p "$port" -w load -k "$keys" -c "$clients" -P 1 --server-pid "$pid"
echo "table-growth events (unix second, ms):"
target/release/tessera-cli -p "$port" LATENCY.HISTORY table-growth | paste -d' ' - - | sort -k2 -n | tail -10
