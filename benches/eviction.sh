#!/usr/bin/env bash
# What eviction costs under SET load: tessera-server and a private redis-server, each
# once with no memory limit and once at maxmemory under allkeys-lru (and Tessera also
# under allkeys-lfu), SET of new keys at pipeline 16 over a key space far larger than
# fits, so nearly every write evicts. Server CPU from /proc/PID/stat; evictions from INFO.
#
#   benches/eviction.sh [REQUESTS] [SHARDS] [MAXMEMORY]
#     REQUESTS per test (default 1000000), SHARDS for Tessera (default 2), MAXMEMORY in
#     bytes for both (default 67108864).
set -euo pipefail
cd "$(dirname "$0")/.."

requests=${1:-1000000}
shards=${2:-2}
maxmemory=${3:-67108864}
clients=50
keyspace=10000000
value_size=256

if ! command -v redis-server >/dev/null; then
  echo "installing redis-server from Debian" >&2
  apt-get update -qq >/dev/null && apt-get install -y -qq redis-server >/dev/null
fi
cargo build --release -q -p tessera-server -p tessera-bench -p tessera-cli --bins

out=$(mktemp)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -f "$out"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

row() {
  python3 -c 'import json,sys
r=json.loads(sys.stdin.read())
ops,cpu,errors=r["ops_per_second"],r["server_cpu_s_per_million_ops"],r["errors"]
print(f"| {sys.argv[1]} | {sys.argv[2]} | {ops:.0f} | {cpu:.3f} | {sys.argv[3]} | {errors} |")' "$@"
}

echo "| server | limit | SET ops/s (P16) | server CPU s per 1M ops | keys evicted | errors |"
echo "|---|---|---|---|---|---|"
for setting in none allkeys-lru allkeys-lfu; do
  tessera_flags=(--port 0 --resp no --shards "$shards" --appendonly no --log-level warn)
  [ "$setting" != none ] && tessera_flags+=(--maxmemory "$maxmemory" --maxmemory-policy "$setting")
  : >"$out"
  ./target/release/tessera-server "${tessera_flags[@]}" >"$out" &
  pid=$!
  pids=("$pid")
  for _ in $(seq 50); do grep -q listening "$out" && break; sleep 0.1; done
  port=$(sed -n 's/^listening on .*://p' "$out")
  result=$(./target/release/tessera-bench -p "$port" -w set -c "$clients" -P 16 -n "$requests" \
    -k "$keyspace" -d "$value_size" --server-pid "$pid" --json)
  evicted=$(./target/release/tessera-cli -p "$port" --json info |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["totals"]["evicted_keys"])')
  echo "$result" | row "tessera ($shards shards)" "$setting" "$evicted"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
for setting in none allkeys-lru; do
  port=$(free_port)
  redis_flags=(--port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no)
  [ "$setting" != none ] && redis_flags+=(--maxmemory "$maxmemory" --maxmemory-policy "$setting")
  redis-server "${redis_flags[@]}" >/dev/null &
  pid=$!
  pids=("$pid")
  sleep 0.5
  result=$(./target/release/tessera-bench --target redis -p "$port" -w set -c "$clients" -P 16 \
    -n "$requests" -k "$keyspace" -d "$value_size" --server-pid "$pid" --json)
  evicted=$(redis-cli -p "$port" info stats | sed -n 's/^evicted_keys:\([0-9]*\).*/\1/p')
  echo "$result" | row redis "$setting" "$evicted"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
