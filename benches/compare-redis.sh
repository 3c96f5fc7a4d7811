#!/usr/bin/env bash
# Side-by-side SET/GET figures: tessera-bench against tessera-server, redis-benchmark against
# a private redis-server, same clients, pipeline depth, key space and value size, in one run.
# Server CPU comes from /proc/PID/stat before and after each test.
#
#   benches/compare-redis.sh [REQUESTS] [SHARDS] [SUITE]
#     REQUESTS per test (default 1000000), SHARDS for Tessera (default 2),
#     SUITE kv (SET/GET with redis-benchmark, default) or native (rate limits and dedup:
#     RL.CHECK against the ZSET sliding log in Lua, DEDUP against SET NX PX, and
#     INV.RESERVE + INV.CONFIRM against the usual Lua scripts on 1,000 hot SKUs; both sides
#     driven by tessera-bench, with memory per new key),
#     or social (TL.PUSH against LPUSH + LTRIM, TL.RANGE LIMIT 20 against LRANGE 0 19,
#     PRESENCE.BEAT against SET EX, PRESENCE.GET of 100 users against MGET of 100 keys,
#     TL.FANOUT to 1,000 timelines against a pipeline of 1,000 LPUSH + LTRIM),
#     or geo (GEO.UPSERT against GEOADD, GEO.NEAR K 5 against GEOSEARCH ... COUNT 5 at 2 km
#     and 500 m, memory per driver; GEO_DRIVERS drivers, default 100000),
#     or hashes (HSET of 10 fields for memory per field, then HSET/HGET/HINCRBY),
#     or zsets (ZADD of 10 members for memory per member, then ZADD/ZINCRBY/ZRANGE 0 9/ZRANK),
#     the same commands on both servers over the same keys.
set -euo pipefail
cd "$(dirname "$0")/.."

requests=${1:-1000000}
shards=${2:-2}
suite=${3:-kv}
clients=50
keyspace=100000
value_size=64

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
  echo "installing redis-server and redis-tools from Debian" >&2
  apt-get update -qq >/dev/null && apt-get install -y -qq redis-server redis-tools >/dev/null
fi
cargo build --release -q -p tessera-server -p tessera-bench --bins

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
ticks_per_second=$(getconf CLK_TCK)

out=$(mktemp)
./target/release/tessera-server --port 0 --resp no --shards "$shards" --appendonly no --log-level warn >"$out" &
tessera_pid=$!
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null &
redis_pid=$!
trap 'kill $tessera_pid $redis_pid 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 50); do grep -q listening "$out" && break; sleep 0.1; done
tessera_port=$(sed -n 's/^listening on .*://p' "$out")
sleep 0.5

row() {
  python3 -c 'import json,sys
r=json.loads(sys.stdin.read())
w,p,ops,p50,p99,cpu,mem=r["workload"],r["pipeline"],r["ops_per_second"],r["p50_us"]/1000,r["p99_us"]/1000,r["server_cpu_s_per_million_ops"],r["bytes_per_new_key"]
mem="-" if mem is None else f"{mem:.0f}"
print(f"| {sys.argv[1]} | {w} | {p} | {ops:.0f} | {p50:.3f} | {p99:.3f} | {cpu:.3f} | {mem} |")' "$1"
}

# One workload on both servers: both TEST PIPELINE KEYS [--flush]
both() {
  local test=$1 pipeline=$2 keys=$3 flush=${4:-}
  ./target/release/tessera-bench -p "$tessera_port" -w "$test" -c "$clients" -P "$pipeline" \
    -n "$requests" -k "$keys" --server-pid "$tessera_pid" $flush --memory --json | row "tessera ($shards shards)"
  ./target/release/tessera-bench --target redis -p "$redis_port" -w "$test" -c "$clients" -P "$pipeline" \
    -n "$requests" -k "$keys" --server-pid "$redis_pid" $flush --memory --json | row "redis"
}

if [ "$suite" = native ]; then
  echo "| server | test | pipeline | ops/s | p50 ms | p99 ms | server CPU s per 1M ops | bytes per new key |"
  echo "|---|---|---|---|---|---|---|---|"
  for pipeline in 1 16; do
    for test in rl dedup inv; do
      keys=$keyspace
      [ "$test" = inv ] && keys=1000
      both "$test" "$pipeline" "$keys" --flush
    done
  done
  exit 0
fi

if [ "$suite" = geo ]; then
  # Drivers in a 30 km box: load them (memory per driver, from each server's own
  # accounting and from its resident set), then moves, then nearest-5 at 2 km and 500 m.
  drivers=${GEO_DRIVERS:-100000}
  rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
  echo "| server | test | pipeline | ops/s | p50 ms | p99 ms | server CPU s per 1M ops | bytes per new key |"
  echo "|---|---|---|---|---|---|---|---|"
  t0=$(rss_kib "$tessera_pid"); r0=$(rss_kib "$redis_pid")
  both geo-load 16 "$drivers" --flush
  t1=$(rss_kib "$tessera_pid"); r1=$(rss_kib "$redis_pid")
  for radius in 2000 500; do
    for pipeline in 1 16; do
      ./target/release/tessera-bench -p "$tessera_port" -w geo-near -c "$clients" -P "$pipeline" \
        -n "$requests" -k "$drivers" --radius "$radius" --server-pid "$tessera_pid" --json | row "tessera ($shards shards) r=$radius"
    done
    # GEOSEARCH costs Redis the same per query at any depth (it scans the circle); one
    # request per client keeps its queue short enough to finish at a million drivers.
    ./target/release/tessera-bench --target redis -p "$redis_port" -w geo-near -c "$clients" -P 1 \
      -n "$((requests / ${GEO_REDIS_DIVISOR:-1}))" -k "$drivers" --radius "$radius" --server-pid "$redis_pid" --json | row "redis r=$radius"
  done
  both geo-upsert 16 "$drivers"
  echo
  echo "resident set growth per driver over the load: tessera $(( (t1 - t0) * 1024 / drivers )) B, redis $(( (r1 - r0) * 1024 / drivers )) B"
  exit 0
fi

if [ "$suite" = hashes ] || [ "$suite" = zsets ]; then
  # Bytes per new key over the 10-field (10-member) load, divided by 10, is per field.
  if [ "$suite" = hashes ]; then load=hload; tests="hset hget hincrby"; else load=zload; tests="zadd zincrby zrange zrank"; fi
  echo "| server | test | pipeline | ops/s | p50 ms | p99 ms | server CPU s per 1M ops | bytes per new key |"
  echo "|---|---|---|---|---|---|---|---|"
  both "$load" 16 "$keyspace" --flush
  for pipeline in 1 16; do
    for test in $tests; do
      both "$test" "$pipeline" "$keyspace"
    done
  done
  exit 0
fi

if [ "$suite" = timelines ] || [ "$suite" = social ]; then
  echo "| server | test | pipeline | ops/s | p50 ms | p99 ms | server CPU s per 1M ops | bytes per new key |"
  echo "|---|---|---|---|---|---|---|---|"
  for pipeline in 1 16; do
    # TL.RANGE reads the timelines TL.PUSH just filled, so only the push starts empty.
    both tl-push "$pipeline" 10000 --flush
    both tl-range "$pipeline" 10000
  done
  for pipeline in 1 16; do
    # WHO100 asks about the users the heartbeats just made online.
    both beat "$pipeline" 10000 --flush
    both who "$pipeline" 10000
  done
  ./target/release/tessera-bench -p "$tessera_port" -w fanout -c "$clients" -P 1 \
    -n $((requests / 100)) -k "$keyspace" --server-pid "$tessera_pid" --flush --json | row "tessera ($shards shards)"
  ./target/release/tessera-bench --target redis -p "$redis_port" -w fanout -c "$clients" -P 1 \
    -n $((requests / 100)) -k "$keyspace" --server-pid "$redis_pid" --flush --json | row "redis"
  exit 0
fi

echo "| server | test | pipeline | ops/s | p50 ms | p99 ms | server CPU s per 1M ops |"
echo "|---|---|---|---|---|---|---|"
for pipeline in 1 16; do
  for test in set get; do
    ./target/release/tessera-bench -p "$tessera_port" -w "$test" -c "$clients" -P "$pipeline" \
      -n "$requests" -k "$keyspace" -d "$value_size" --server-pid "$tessera_pid" --json |
      python3 -c 'import json,sys
r=json.loads(sys.stdin.read())
w,p,ops,p50,p99,cpu=r["workload"],r["pipeline"],r["ops_per_second"],r["p50_us"]/1000,r["p99_us"]/1000,r["server_cpu_s_per_million_ops"]
print(f"| tessera ({sys.argv[1]} shards) | {w} | {p} | {ops:.0f} | {p50:.3f} | {p99:.3f} | {cpu:.3f} |")' "$shards"
    before=$(cpu_ticks "$redis_pid")
    csv=$(redis-benchmark -p "$redis_port" -t "$test" -c "$clients" -P "$pipeline" -n "$requests" \
      -r "$keyspace" -d "$value_size" --csv 2>/dev/null | tail -n 1)
    after=$(cpu_ticks "$redis_pid")
    python3 -c 'import csv,sys
row=next(csv.reader([sys.argv[1]]))
cpu=(int(sys.argv[2])-int(sys.argv[3]))/int(sys.argv[4])/int(sys.argv[5])*1e6
print(f"| redis | {row[0]} | {sys.argv[6]} | {float(row[1]):.0f} | {float(row[4]):.3f} | {float(row[6]):.3f} | {cpu:.3f} |")' \
      "$csv" "$after" "$before" "$ticks_per_second" "$requests" "$pipeline"
  done
done
