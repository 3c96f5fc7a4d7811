#!/usr/bin/env bash
# Durability figures, in one run on one disk: Tessera with its log against Tessera in
# memory and Redis with appendonly at the same appendfsync; a snapshot taken while writes
# go on against Redis's BGSAVE; and a restart from snapshot plus log.
#
#   benches/durability.sh [SUITE] [REQUESTS] [SHARDS]
#     SUITE everysec (SET and INV.RESERVE + INV.CONFIRM at pipeline 16: server CPU per op),
#           always (SET at pipeline 1 and 16: ops/s and p99), or
#           snapshot (KEYS keys of 64 bytes, default 10,000,000: snapshot time and peak
#           resident-set growth while writes continue, Redis BGSAVE beside it, then the
#           restart's keys per second)
#     REQUESTS per test (default 1000000), SHARDS for Tessera (default 2).
# Data folders live under target/durability-bench (the same disk for both servers).
set -euo pipefail
cd "$(dirname "$0")/.."

suite=${1:-everysec}
requests=${2:-1000000}
shards=${3:-2}
clients=50

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  echo "installing redis-server and redis-tools from Debian" >&2
  apt-get update -qq >/dev/null && apt-get install -y -qq redis-server redis-tools >/dev/null
fi
cargo build --release -q -p tessera-server -p tessera-bench -p tessera-cli --bins

data=$(pwd)/target/durability-bench
rm -rf "$data" && mkdir -p "$data/tessera" "$data/redis"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
pids=()
trap 'kill ${pids[*]} 2>/dev/null; true' EXIT

# start_tessera NAME FLAGS...: starts a server, sets NAME_port and NAME_pid.
start_tessera() {
  local name=$1 out
  shift
  out=$(mktemp)
  ./target/release/tessera-server --port 0 --resp no --shards "$shards" --log-level warn "$@" >"$out" &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 600); do grep -q listening "$out" && break; sleep 0.1; done
  printf -v "${name}_port" '%s' "$(sed -n 's/^listening on .*://p' "$out")"
  printf -v "${name}_pid" '%s' "$pid"
}

start_redis() {
  redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$data/redis" --save "" "$@" \
    --daemonize no >/dev/null &
  redis_pid=$!
  pids+=("$redis_pid")
  for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
}

row() {
  python3 -c 'import json,sys
r=json.loads(sys.stdin.read())
w,p,ops,p50,p99,cpu=r["workload"],r["pipeline"],r["ops_per_second"],r["p50_us"]/1000,r["p99_us"]/1000,r["server_cpu_s_per_million_ops"]
print(f"| {sys.argv[1]} | {w} | {p} | {ops:.0f} | {p50:.3f} | {p99:.3f} | {cpu:.3f} |")' "$1"
}

# run LABEL PORT PID TARGET WORKLOAD PIPELINE KEYS [extra flags]
run() {
  local label=$1 port=$2 pid=$3 target=$4 workload=$5 pipeline=$6 keys=$7
  shift 7
  ./target/release/tessera-bench --target "$target" -p "$port" -w "$workload" -c "$clients" \
    -P "$pipeline" -n "$requests" -k "$keys" --server-pid "$pid" --json "$@" | row "$label"
}

header() {
  echo "| server | test | pipeline | ops/s | p50 ms | p99 ms | server CPU s per 1M ops |"
  echo "|---|---|---|---|---|---|---|"
}

if [ "$suite" = everysec ] || [ "$suite" = always ]; then
  fsync=$suite
  start_tessera memory --appendonly no
  start_tessera logged --dir "$data/tessera" --appendfsync "$fsync" --snapshot-after-bytes 0
  start_redis --appendonly yes --appendfsync "$fsync"
  header
  if [ "$suite" = everysec ]; then tests="16:set:100000 16:inv:1000"; else tests="1:set:100000 16:set:100000"; fi
  for spec in $tests; do
    IFS=: read -r pipeline workload keys <<<"$spec"
    run "tessera in memory ($shards shards)" "$memory_port" "$memory_pid" tessera "$workload" "$pipeline" "$keys" --flush
    run "tessera $fsync ($shards shards)" "$logged_port" "$logged_pid" tessera "$workload" "$pipeline" "$keys" --flush
    run "redis appendonly $fsync" "$redis_port" "$redis_pid" redis "$workload" "$pipeline" "$keys" --flush
  done
  exit 0
fi

if [ "$suite" = snapshot ]; then
  keys=${KEYS:-10000000}
  start_tessera logged --dir "$data/tessera" --appendfsync everysec --snapshot-after-bytes 0
  start_redis --appendonly no
  ./target/release/tessera-bench -p "$logged_port" -w load -c "$clients" -P 16 -k "$keys" --json >/dev/null
  ./target/release/tessera-bench --target redis -p "$redis_port" -w load -c "$clients" -P 16 -k "$keys" --json >/dev/null
  cli() { ./target/release/tessera-cli -p "$logged_port" "$@"; }
  echo "keys: tessera $(cli dbsize), redis $(redis-cli -p "$redis_port" dbsize)"

  # Writes go on through each snapshot: 10 clients at pipeline 1 over the whole keyspace.
  writes() { ./target/release/tessera-bench --target "$1" -p "$2" -w set -c 10 -P 1 -k "$keys" --duration "$3" --json >/dev/null & }
  base=$(rss_kib "$logged_pid"); peak=$base
  writes tessera "$logged_port" 120
  writer=$!
  sleep 1
  before=$(cli lastsave)
  started=$(date +%s.%N)
  cli snapshot >/dev/null
  while [ "$(cli lastsave)" = "$before" ]; do
    now=$(rss_kib "$logged_pid"); [ "$now" -gt "$peak" ] && peak=$now
    sleep 0.05
  done
  ended=$(date +%s.%N)
  kill "$writer" 2>/dev/null || true; wait "$writer" 2>/dev/null || true
  python3 -c 'import sys
b,p,s,e=int(sys.argv[1]),int(sys.argv[2]),float(sys.argv[3]),float(sys.argv[4])
print(f"tessera snapshot: {e-s:.2f} s, resident set {b/1024:.0f} MiB before, peak growth {(p-b)/1024:.0f} MiB ({(p-b)/b*100:.1f}%)")' "$base" "$peak" "$started" "$ended"
  cli info | grep -E "last_snapshot_(duration_ms|bytes|entries)" || true

  base=$(rss_kib "$redis_pid")
  writes redis "$redis_port" 120
  writer=$!
  sleep 1
  started=$(date +%s.%N)
  redis-cli -p "$redis_port" bgsave >/dev/null
  child_peak=0
  while redis-cli -p "$redis_port" info persistence | grep -q "rdb_bgsave_in_progress:1"; do
    child=$(pgrep -P "$redis_pid" | head -1 || true)
    if [ -n "$child" ]; then
      # The child's private (copied-on-write) pages are the save's extra memory.
      private=$(awk '/^Private_(Clean|Dirty)/ {s+=$2} END {print s+0}' "/proc/$child/smaps_rollup" 2>/dev/null || echo 0)
      [ "$private" -gt "$child_peak" ] && child_peak=$private
    fi
    sleep 0.05
  done
  ended=$(date +%s.%N)
  kill "$writer" 2>/dev/null || true; wait "$writer" 2>/dev/null || true
  cow=$(redis-cli -p "$redis_port" info persistence | sed -n 's/^rdb_last_cow_size:\([0-9]*\).*/\1/p')
  python3 -c 'import sys
b,c,k,s,e=int(sys.argv[1]),int(sys.argv[2]),int(sys.argv[3]),float(sys.argv[4]),float(sys.argv[5])
print(f"redis bgsave: {e-s:.2f} s, resident set {b/1024:.0f} MiB before, child private peak {c/1024:.0f} MiB ({c/b*100:.1f}%), rdb_last_cow_size {k/1048576:.0f} MiB")' "$base" "$child_peak" "${cow:-0}" "$started" "$ended"

  # Restart from the snapshot and the log written since.
  kill -9 "$logged_pid"; wait "$logged_pid" 2>/dev/null || true
  out=$(mktemp)
  started=$(date +%s.%N)
  ./target/release/tessera-server --port 0 --resp no --shards "$shards" --log-level info --dir "$data/tessera" >"$out" 2>&1 &
  pids+=("$!")
  until grep -q "^listening" "$out"; do sleep 0.01; done
  ended=$(date +%s.%N)
  loaded=$(grep -o 'keys=[0-9]*' "$out" | awk -F= '{s+=$2} END {print s}')
  python3 -c 'import sys
k,s,e,n=int(sys.argv[1]),float(sys.argv[2]),float(sys.argv[3]),int(sys.argv[4])
print(f"restart: {k} keys in {e-s:.2f} s from start to listening: {k/(e-s)/1e6:.2f} M keys/s, {k/(e-s)/n/1e6:.2f} M per shard")' "$loaded" "$started" "$ended" "$shards"
  grep "loaded" "$out" | sed 's/^.*INFO //'
  exit 0
fi

echo "unknown suite: $suite" >&2
exit 2
