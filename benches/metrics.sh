#!/usr/bin/env bash
# What the diagnostics cost a node under load, in one run: tessera-bench SET and GET at
# pipeline 16 (50 clients, 2 shards) in rounds that cycle through
#   plain      the defaults (slow log at 10 ms, latency monitor off, nobody scraping),
#   scraped    the same while a scraper fetches /metrics every 100 ms,
#   http-only  the same scraper asking for a path that is not served (404): its own CPU
#              and HTTP's, without the scrape, so scraped − http-only is the scrape's cost
#              on a machine where the scraper shares the cores,
#   no-slowlog slowlog-log-slower-than -1 (set over RESP at run time), nobody scraping,
# printing ops/s and the server's CPU seconds per million operations for each, the
# scraper's count and mean time per scrape, and then, with no load, the server CPU one
# scrape costs (1,000 scrapes back to back): at one scrape per 100 ms, ten of those a
# second is the share of a core scraping takes.
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
  python3 - "$metrics_port" "$scrapes" "$1" <<'PY' &
import http.client, signal, sys, time
port, out, path = sys.argv[1], sys.argv[2], sys.argv[3]
count, spent = 0, 0.0
# One kept-alive connection, as Prometheus keeps one: the scraper's own work stays small
# on a machine the load generator and the server share.
link = http.client.HTTPConnection("127.0.0.1", int(port))
def done(*_):
    with open(out, "a") as f:
        f.write(f"{path} {count} {spent / max(count, 1) * 1000:.2f}\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, done)
while True:
    began = time.monotonic()
    link.request("GET", path)
    link.getresponse().read()
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
    python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.0f %.3f" % (r["ops_per_second"], r["server_cpu_s_per_million_ops"]))'
}

echo "| round | mode | SET ops/s | SET CPU s/M | GET ops/s | GET CPU s/M |"
echo "|---|---|---|---|---|---|"
for round in $(seq "$rounds"); do
  for mode in plain scraped http-only no-slowlog; do
    [ "$mode" = scraped ] && start_scraper /metrics
    [ "$mode" = http-only ] && start_scraper /not-served
    [ "$mode" = no-slowlog ] && slowlog -1
    read -r set_ops set_cpu <<<"$(run set)"
    read -r get_ops get_cpu <<<"$(run get)"
    [ -n "$scraper" ] && stop_scraper
    [ "$mode" = no-slowlog ] && slowlog 10000
    echo "| $round | $mode | $set_ops | $set_cpu | $get_ops | $get_cpu |"
  done
done
echo
while read -r path count mean; do echo "scraper of $path: $count requests, $mean ms each on average"; done <"$scrapes"
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
before=$(cpu_ticks "$pid")
python3 - "$metrics_port" <<'PY'
import http.client, sys
link = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
for _ in range(1000):
    link.request("GET", "/metrics")
    size = len(link.getresponse().read())
print(f"one scrape: {size} bytes of text")
PY
after=$(cpu_ticks "$pid")
python3 -c 'import sys; ms=(int(sys.argv[2])-int(sys.argv[1]))/int(sys.argv[3])*1000/1000; print("server CPU per scrape: %.3f ms; at 10 scrapes/s: %.2f%% of one core" % (ms, ms))' \
  "$before" "$after" "$(getconf CLK_TCK)"
