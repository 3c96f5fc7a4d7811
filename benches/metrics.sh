#!/usr/bin/env bash
# What the diagnostics cost a node under load, in one run: tessera-bench SET and GET at
# pipeline 16 (50 clients, 2 shards) in rounds that cycle through
#   plain      the defaults (slow log at 10 ms, latency monitor off, nobody scraping),
#   scraped    the same while a scraper fetches /metrics every 100 ms,
#   no-slowlog slowlog-log-slower-than -1 (set over RESP at run time), nobody scraping,
# printing ops/s and the server's CPU seconds per million operations for each, and the
# scraper's count and mean time per scrape.
#
#   benches/metrics.sh [REQUESTS] [ROUNDS]   (defaults: 1000000, 3)
set -euo pipefail
cd "$(dirname "$0")/.."

requests=${1:-1000000}
rounds=${2:-3}
cargo build --release -q -p tessera-server -p tessera-bench --bins

out=$(mktemp)
scrapes=$(mktemp)
./target/release/tessera-server --port 0 --resp-port 0 --metrics-port 0 --shards 2 \
  --appendonly no --log-level warn >"$out" &
pid=$!
scraper=""
trap 'kill $pid $scraper 2>/dev/null; rm -f "$out" "$scrapes"' EXIT
for _ in $(seq 50); do grep -q "metrics listening" "$out" && break; sleep 0.1; done
port=$(sed -n 's/^listening on .*://p' "$out")
resp_port=$(sed -n 's/^resp listening on .*://p' "$out")
metrics_port=$(sed -n 's/^metrics listening on .*://p' "$out")
sleep 0.5

slowlog() { redis-cli -p "$resp_port" CONFIG SET slowlog-log-slower-than "$1" >/dev/null; }

start_scraper() {
  python3 - "$metrics_port" "$scrapes" <<'PY' &
import signal, sys, time, urllib.request
port, out = sys.argv[1], sys.argv[2]
count, spent = 0, 0.0
def done(*_):
    with open(out, "a") as f:
        f.write(f"{count} {spent / max(count, 1) * 1000:.2f}\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, done)
while True:
    began = time.monotonic()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as r:
        r.read()
    count += 1
    spent += time.monotonic() - began
    time.sleep(max(0.0, 0.1 - (time.monotonic() - began)))
PY
  scraper=$!
}
stop_scraper() { kill -TERM "$scraper"; wait "$scraper" 2>/dev/null || true; scraper=""; }

run() {
  ./target/release/tessera-bench -p "$port" -w "$1" -c 50 -P 16 -n "$requests" -k 100000 \
    --server-pid "$pid" --json |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(f"{r[\"ops_per_second\"]:.0f} {r[\"server_cpu_s_per_million_ops\"]:.3f}")'
}

echo "| round | mode | SET ops/s | SET CPU s/M | GET ops/s | GET CPU s/M |"
echo "|---|---|---|---|---|---|"
for round in $(seq "$rounds"); do
  for mode in plain scraped no-slowlog; do
    [ "$mode" = scraped ] && start_scraper
    [ "$mode" = no-slowlog ] && slowlog -1
    read -r set_ops set_cpu <<<"$(run set)"
    read -r get_ops get_cpu <<<"$(run get)"
    [ "$mode" = scraped ] && stop_scraper
    [ "$mode" = no-slowlog ] && slowlog 10000
    echo "| $round | $mode | $set_ops | $set_cpu | $get_ops | $get_cpu |"
  done
done
echo
while read -r count mean; do echo "scraper: $count scrapes, $mean ms each on average"; done <"$scrapes"
