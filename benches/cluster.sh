#!/usr/bin/env bash
# Throughput and server CPU per operation for a single node and for clusters of 1, 2 and 3
# nodes on this machine, SET then GET, all driven by tessera-bench (which routes each key
# to its owning node and shard from the slot map). Server CPU is every node's, added up.
#
#   benches/cluster.sh [REQUESTS] [SHARDS_PER_NODE]
#     REQUESTS per test (default 1000000), SHARDS_PER_NODE (default 1).
#
# On a two-core machine more nodes cannot add throughput (the load generator shares the
# cores); the figure to read is CPU per operation, which says what a cluster costs.
set -euo pipefail
cd "$(dirname "$0")/.."

requests=${1:-1000000}
shards=${2:-1}
clients=50
keyspace=100000

cargo build --release -q -p tessera-server -p tessera-bench -p tessera-cli --bins

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# start_node NAME [FLAGS...]: starts a node and waits for it; sets $port and $pid.
start_node() {
  local name=$1; shift
  ./target/release/tessera-server --port 0 --resp no --shards "$shards" --appendonly no \
    --dir "$work/$name" --log-level warn "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do grep -q listening "$work/$name.out" 2>/dev/null && break; sleep 0.1; done
  port=$(sed -n 's/^listening on .*://p' "$work/$name.out")
}

# bench LABEL PORT PIDS: SET and GET at pipeline 1 and 16.
bench() {
  local label=$1 port=$2 pids_csv=$3
  for pipeline in 1 16; do
    for workload in set get; do
      ./target/release/tessera-bench -p "$port" -w "$workload" -c "$clients" -P "$pipeline" \
        -n "$requests" -k "$keyspace" --server-pid "$pids_csv" --json |
        python3 -c "
import json, sys
r = json.loads(sys.stdin.readline())
print(f\"| $label | {r['workload'].upper()} | $pipeline | {r['ops_per_second']:,.0f} | {r['p99_us']} | {r['server_cpu_s_per_million_ops']:.2f} | {r['errors']} |\")"
    done
  done
}

echo "| setup | test | pipeline | ops/s | p99 µs | server CPU s per 1M | errors |"
echo "|---|---|---|---|---|---|---|"

start_node single
bench "single node (no cluster)" "$port" "$pid"
kill "$pid"; pids=()

for nodes in 1 2 3; do
  ports=(); node_pids=()
  for i in $(seq "$nodes"); do
    bus=$(free_port)
    start_node "n$nodes-$i" --cluster-enabled yes --cluster-node-id "$i" --cluster-bus-port "$bus"
    ports+=("$port")
    node_pids+=("$pid")
  done
  addresses=(); for p in "${ports[@]}"; do addresses+=("127.0.0.1:$p"); done
  ./target/release/tessera-cli -p "${ports[0]}" cluster create "${addresses[@]}" >/dev/null
  for _ in $(seq 100); do
    ok=$(for p in "${ports[@]}"; do ./target/release/tessera-cli -p "$p" --json cluster info; done | grep -c '"state":"ok"' || true)
    [ "$ok" = "$nodes" ] && break; sleep 0.1
  done
  csv=$(IFS=,; echo "${node_pids[*]}")
  bench "$nodes-node cluster" "${ports[0]}" "$csv"
  for pid in "${node_pids[@]}"; do kill "$pid"; done
  pids=()
  sleep 0.5
done
