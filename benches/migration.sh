#!/usr/bin/env bash
# Live rebalancing on this machine: a 4th node joins a loaded 3-node cluster, then leaves
# again, each while tessera-bench clients (following redirects through tessera-client, as
# an application does) keep writing. Reports what moved and how fast (from CLUSTER.MIGRATE's
# own count of entries and bytes, over the wall time of the CLI command), the longest write pause of a batch, the clients' p99 and
# p99.9 during the change against the same load without one, their errors, and the keys
# each node holds before and after.
#
#   benches/migration.sh [KEYS] [VALUE_BYTES] [SHARDS_PER_NODE]
#     defaults: 200000 keys of 100 bytes, 1 shard per node.
set -euo pipefail
cd "$(dirname "$0")/.."

keys=${1:-200000}
value=${2:-100}
shards=${3:-1}
clients=20
window=12

cargo build --release -q -p tessera-server -p tessera-bench -p tessera-cli --bins

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

ports=()
for i in 1 2 3 4; do
  bus=$(free_port)
  ./target/release/tessera-server --port 0 --resp no --shards "$shards" --appendonly no --dir "$work/n$i" \
    --log-level warn --cluster-enabled yes --cluster-node-id "$i" --cluster-bus-port "$bus" \
    >"$work/n$i.out" 2>"$work/n$i.err" &
  pids+=("$!")
  for _ in $(seq 100); do grep -q listening "$work/n$i.out" 2>/dev/null && break; sleep 0.1; done
  ports+=("$(sed -n 's/^listening on .*://p' "$work/n$i.out")")
done
cli() { ./target/release/tessera-cli -p "${ports[0]}" "$@"; }
cli cluster create --replicas 0 "127.0.0.1:${ports[0]}" "127.0.0.1:${ports[1]}" "127.0.0.1:${ports[2]}" >/dev/null
for _ in $(seq 100); do
  ok=$(for p in "${ports[@]:0:3}"; do ./target/release/tessera-cli -p "$p" --json cluster info; done | grep -c '"state":"ok"' || true)
  [ "$ok" = 3 ] && break; sleep 0.1
done

bench() { ./target/release/tessera-bench -p "${ports[0]}" --follow -k "$keys" -d "$value" --json "$@"; }
bench -w load -c 50 >/dev/null
counts() { for p in "${ports[@]}"; do ./target/release/tessera-cli -p "$p" DBSIZE; done | tr '\n' ' '; }
summary() {
  python3 -c "
import json, sys
r = json.loads(sys.stdin.readline())
print(f\"{r['ops_per_second']:,.0f} ops/s, p99 {r['p99_us']} µs, p99.9 {r['p999_us']} µs, {r['errors']} errors\")"
}

echo "loaded $keys keys of $value bytes on 3 nodes of $shards shard(s); keys by node: $(counts)"
echo "SET, $clients clients, ${window} s, no change:   $(bench -w set -c "$clients" --duration "$window" | summary)"

# change LABEL COMMAND...: runs the load for the window, the change starting a second in.
change() {
  local label=$1; shift
  bench -w set -c "$clients" --duration "$window" >"$work/during.json" &
  local load=$!
  sleep 1
  local began ended
  began=$(date +%s%N)
  "$@" >"$work/change.json"
  ended=$(date +%s%N)
  wait "$load"
  echo "SET, $clients clients, ${window} s, $label: $(summary <"$work/during.json")"
  python3 -c "
import json
r = json.load(open('$work/change.json'))
keys = sum(m['report']['keys'] for m in r['moves'])
size = sum(m['report']['bytes'] for m in r['moves'])
ms = ($ended - $began) // 1_000_000  # wall time: the givers move their slots at once
slots = sum(m['report']['slots'] for m in r['moves'])
pause = max([m['report']['longest_pause_ms'] for m in r['moves']] or [0])
print(f'  moved {slots} slots ({slots / 16384:.1%}), {keys} entries, {size / 1e6:.1f} MB in {ms} ms: '
      f'{keys / max(ms, 1) * 1000:,.0f} keys/s, {size / 1e6 / max(ms, 1) * 1000:.1f} MB/s; longest write pause {pause} ms')"
  echo "  keys by node: $(counts)"
}

change "node 4 joining" cli --json cluster add-node "127.0.0.1:${ports[3]}"
# Four processes share the cores now: the same load on the new layout, for comparison.
echo "SET, $clients clients, ${window} s, 4 nodes, no change: $(bench -w set -c "$clients" --duration "$window" | summary)"
change "node 4 leaving" cli --json cluster remove-node 4
