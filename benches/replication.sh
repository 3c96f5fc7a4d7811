#!/usr/bin/env bash
# What a replica costs its primary, and how far it trails. Two one-shard primaries side by
# side, each its own cluster: node 1 alone, node 2 with node 3 as its replica. Each takes a
# pipelined SET load (8 clients × pipeline 16) in turn, twice (A B A B, so drift in this
# shared machine falls on both). Prints each run's throughput, p99 and the primary's
# server CPU seconds per million writes (from /proc, through tessera-bench --server-pid),
# the replica's own CPU per million writes, and the replica's lag as its primary sees it
# (INFO replication, sampled during the replicated runs).
#
#   benches/replication.sh [SECONDS]     default 10 per run
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-10}
cargo build --release -q -p tessera-server -p tessera-bench -p tessera-cli --bins

# shellcheck source=benches/cluster-nodes.sh
source benches/cluster-nodes.sh
info() { cli "${port[$1]}" --json "${@:2}" | python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + sys.argv[1]))" "$path"; }
wait_ok() {
  for _ in $(seq 200); do
    [ "$(path='["state"]' info "$1" cluster info)" = ok ] && return
    sleep 0.05
  done
}
for n in 1 2 3; do port[$n]=$(free_port); bus[$n]=$(free_port); start "$n"; done
cli "${port[1]}" cluster create "127.0.0.1:${port[1]}" >/dev/null
cli "${port[2]}" cluster create "127.0.0.1:${port[2]}" >/dev/null
wait_ok 1; wait_ok 2
cli "${port[2]}" cluster add-node "127.0.0.1:${port[3]}" --replica-of 2 >/dev/null
for _ in $(seq 200); do
  [ "$(path='["replicated"]' info 3 cluster info)" -gt 0 ] && break
  sleep 0.05
done
# Every run overwrites the same keys, so none pays for growing the table.
for n in 1 2; do ./target/release/tessera-bench -p "${port[$n]}" --follow -w load -k 100000 -c 8 >/dev/null; done

bench() {
  ./target/release/tessera-bench -p "${port[$1]}" --follow -w set -c 8 -P 16 -k 100000 \
    --duration "$seconds" --server-pid "${pid[$1]}" --json 2>/dev/null
}
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
: >"$work/lag"
: >"$work/replica"
for pass in 1 2; do
  bench 1 >"$work/alone-$pass.json"
  before=$(ticks "${pid[3]}")
  stream_before=$(path='["replication"]["stream_offset"]' info 2 INFO)
  bench 2 >"$work/replicated-$pass.json" &
  load=$!
  while kill -0 "$load" 2>/dev/null; do
    path='["replication"]["replicas"][0]["lag_bytes"]' info 2 INFO >>"$work/lag" 2>/dev/null || true
    sleep 0.1
  done
  wait "$load"
  stream_after=$(path='["replication"]["stream_offset"]' info 2 INFO)
  echo "$before $(ticks "${pid[3]}") $((stream_after - stream_before))" >>"$work/replica"
done

python3 - "$work" "$(getconf CLK_TCK)" <<'PY'
import json, statistics, sys
work, hz = sys.argv[1], int(sys.argv[2])
replica = [tuple(map(int, line.split())) for line in open(f"{work}/replica")]
print("| run | SET ops/s | p99 µs | primary CPU s / M writes | replica CPU s / M writes | stream bytes / write |")
print("|---|---|---|---|---|---|")
ratios = []
for p in (1, 2):
    a = json.load(open(f"{work}/alone-{p}.json"))
    r = json.load(open(f"{work}/replicated-{p}.json"))
    before, after, stream = replica[p - 1]
    rcpu = (after - before) / hz / r["requests"] * 1e6
    print(f"| {p}: no replica | {a['ops_per_second']:,.0f} | {a['p99_us']} | {a['server_cpu_s_per_million_ops']:.2f} | – | – |")
    print(f"| {p}: one replica | {r['ops_per_second']:,.0f} | {r['p99_us']} | {r['server_cpu_s_per_million_ops']:.2f} | {rcpu:.2f} | {stream / r['requests']:.0f} |")
    ratios.append(r["server_cpu_s_per_million_ops"] / a["server_cpu_s_per_million_ops"])
    for run in (a, r):
        assert run["errors"] == 0, run
print("primary CPU per write, with a replica / without: " + ", ".join(f"{x:.2f}" for x in ratios))
lag = sorted(int(x) for x in open(f"{work}/lag").read().split())
if lag:
    print(f"replica lag behind its primary's stream over {len(lag)} samples: median "
          f"{statistics.median(lag):,.0f} bytes, p99 {lag[max(0, int(len(lag) * 0.99) - 1)]:,} bytes, max {lag[-1]:,} bytes")
PY
