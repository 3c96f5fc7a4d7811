#!/usr/bin/env bash
# The seeds' scenarios, Tessera beside Redis in one run: tessera-server as the README starts
# it (its log synced every second) and a private redis-server with the same durability
# (appendonly yes, appendfsync everysec), each scenario checked and plotted.
#
#   benches/scenarios.sh [SECONDS] [SCALE] [PLOTS] [SCENARIOS]
#     SECONDS of load per scenario and server (default 30), SCALE the one knob (default 1),
#     PLOTS the folder for the PNG and SVG plots (default target/scenarios),
#     SCENARIOS comma-separated (default all five).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-30}
scale=${2:-1}
plots=${3:-target/scenarios}
scenarios=${4:-dinner-rush,ad-exchange,chat,ride-hailing,flash-sale}

if ! command -v redis-server >/dev/null; then
  echo "installing redis-server from Debian" >&2
  apt-get update -qq >/dev/null && apt-get install -y -qq redis-server >/dev/null
fi
cargo build --release -q -p tessera-server -p tessera-bench --bins

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

work=$(mktemp -d)
./target/release/tessera-server --port 0 --resp no --metrics no --dir "$work/tessera" \
  --log-level warn >"$work/tessera.log" &
tessera_pid=$!
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly yes \
  --appendfsync everysec --dir "$work" --daemonize no >/dev/null &
redis_pid=$!
trap 'kill $tessera_pid $redis_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do grep -q "^listening" "$work/tessera.log" && break; sleep 0.1; done
tessera_port=$(sed -n 's/^listening on .*://p' "$work/tessera.log")
for _ in $(seq 50); do redis-cli -p "$redis_port" PING >/dev/null 2>&1 && break; sleep 0.1; done

./target/release/tessera-bench --port "$tessera_port" --redis-port "$redis_port" \
  --server-pid "$tessera_pid" --redis-pid "$redis_pid" --scenario "$scenarios" \
  --duration "$seconds" --scale "$scale" --clients 8 --check --plot "$plots"
