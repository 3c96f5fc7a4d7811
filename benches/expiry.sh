#!/usr/bin/env bash
# How many expired keys a shard still holds under a stream of short-lived ones: SET with
# a 200 ms TTL as fast as 50 connections at pipeline 16 can, new keys from a 10M key
# space, INFO read once a second. "Live" is the last 200 ms of SETs (rate x 0.2 s), "held"
# is INFO's keys minus that.
#
#   benches/expiry.sh [SECONDS] [SHARDS]   (defaults 12 and 2)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-12}
shards=${2:-2}
cargo build --release -q -p tessera-server -p tessera-bench -p tessera-cli --bins
out=$(mktemp)
./target/release/tessera-server --port 0 --resp no --shards "$shards" --appendonly no --log-level warn >"$out" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 50); do grep -q listening "$out" && break; sleep 0.1; done
port=$(sed -n 's/^listening on .*://p' "$out")
./target/release/tessera-bench -p "$port" -w set -c 50 -P 16 -k 10000000 --ttl-ms 200 \
  --duration "$seconds" --json >/dev/null &
bench=$!
info() { ./target/release/tessera-cli -p "$port" --json info; }
previous=$(info)
echo "| second | SETs/s | keys held | live | expired but held, % of live |"
echo "|---|---|---|---|---|"
for second in $(seq 2 "$seconds"); do
  sleep 1
  now=$(info)
  python3 - "$second" "$previous" "$now" <<'PY'
import json, sys
second, before, after = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
calls = lambda info: info["commands"].get("SET", {}).get("calls", 0)
rate = calls(after) - calls(before)
keys = after["totals"]["keys"]
live = rate * 0.2
if rate > 0:
    print(f"| {second} | {rate} | {keys} | {live:.0f} | {100 * (keys - live) / live:.0f}% |")
PY
  previous=$now
done
wait "$bench"
