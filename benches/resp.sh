#!/usr/bin/env bash
# redis-benchmark against Tessera's RESP port and against a private Redis, in one run:
# requests per second, p99, and each server's CPU seconds per million requests (from
# /proc/PID/stat around each test), at pipeline depth 1 and 16, 50 clients.
#
#   benches/resp.sh [REQUESTS] [SHARDS]
#     REQUESTS per test (default 200000), SHARDS for Tessera (default 1: Redis runs one
#     thread of commands).
#   RESP_TESTS      redis-benchmark -t tests (default set,get,incr,hset,zadd; "" for none)
#   RESP_COMMANDS   commands in redis-benchmark's custom form, separated by "|"; an entry
#                   "OURS => THEIRS" sends OURS to Tessera and THEIRS to Redis (a native
#                   command against the Redis command it replaces)
#                   (__rand_int__ is replaced by a number below 100000)
#   RESP_SETUP      a file of RESP requests loaded into both servers first (redis-cli --pipe)
set -euo pipefail
cd "$(dirname "$0")/.."

requests=${1:-200000}
shards=${2:-1}
tests=${RESP_TESTS-set,get,incr,hset,zadd}
custom=${RESP_COMMANDS:-}
setup=${RESP_SETUP:-}

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
  echo "installing redis-server and redis-tools from Debian" >&2
  apt-get update -qq >/dev/null && apt-get install -y -qq redis-server redis-tools >/dev/null
fi
cargo build --release -q -p tessera-server --bins

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
ticks_per_second=$(getconf CLK_TCK)

out=$(mktemp)
./target/release/tessera-server --port 0 --resp-port 0 --shards "$shards" --appendonly no \
  --log-level warn >"$out" &
tessera_pid=$!
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null &
redis_pid=$!
trap 'kill $tessera_pid $redis_pid 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 50); do grep -q "resp listening" "$out" && break; sleep 0.1; done
tessera_port=$(sed -n 's/^resp listening on .*://p' "$out")
sleep 0.5
if [ -n "$setup" ]; then
  redis-cli -h 127.0.0.1 -p "$tessera_port" --pipe <"$setup" >/dev/null
  redis-cli -h 127.0.0.1 -p "$redis_port" --pipe <"$setup" >/dev/null
fi

# One redis-benchmark test (a -t name, or a custom command's words) against one server:
# prints "rps p99_ms cpu_s_per_million".
measure() {
  local port=$1 pid=$2 test=$3 pipeline=$4 before after csv what
  if [[ "$test" == *" "* ]]; then read -ra what <<<"$test"; else what=(-t "$test"); fi
  before=$(cpu_ticks "$pid")
  csv=$(redis-benchmark -h 127.0.0.1 -p "$port" -c 50 -n "$requests" -r 100000 -P "$pipeline" \
    --csv "${what[@]}" 2>/dev/null | tail -1)
  after=$(cpu_ticks "$pid")
  python3 -c 'import csv,sys
row=next(csv.reader([sys.argv[1]]))
rps=float(row[1]); p99=float(row[6])
cpu=(int(sys.argv[3])-int(sys.argv[2]))/int(sys.argv[4])
print(f"{rps:.0f} {p99:.3f} {cpu/int(sys.argv[5])*1e6:.3f}")' "$csv" "$before" "$after" "$ticks_per_second" "$requests"
}

echo "| test | P | Tessera req/s | Redis req/s | Tessera p99 ms | Redis p99 ms | Tessera CPU s/M | Redis CPU s/M | CPU ratio |"
echo "|---|---|---|---|---|---|---|---|---|"
IFS='|' read -ra commands <<<"$custom"
for pipeline in 1 16; do
  for test in ${tests//,/ } "${commands[@]}"; do
    ours=$test theirs=$test
    if [[ "$test" == *" => "* ]]; then ours=${test%% => *} theirs=${test##* => }; fi
    read -r t_rps t_p99 t_cpu < <(measure "$tessera_port" "$tessera_pid" "$ours" "$pipeline")
    read -r r_rps r_p99 r_cpu < <(measure "$redis_port" "$redis_pid" "$theirs" "$pipeline")
    ratio=$(python3 -c "import sys; print(f'{float(sys.argv[1])/float(sys.argv[2]):.2f}')" "$t_cpu" "$r_cpu")
    echo "| $test | $pipeline | $t_rps | $r_rps | $t_p99 | $r_p99 | $t_cpu | $r_cpu | $ratio |"
  done
done
