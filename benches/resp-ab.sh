#!/usr/bin/env bash
# Two builds of tessera-server side by side in one sitting: redis-benchmark against each
# one's RESP port in turn, several rounds, each build's server CPU seconds per million
# requests averaged over the rounds. For "before and after" figures of one change, on a
# machine too noisy for absolute times.
#
#   benches/resp-ab.sh BEFORE_BINARY AFTER_BINARY [TESTS] [REQUESTS] [PIPELINE] [ROUNDS]
#     TESTS     redis-benchmark -t names, comma-separated (default set,get)
#     REQUESTS  per test and round (default 400000)
#     PIPELINE  redis-benchmark -P (default 16)
#     ROUNDS    alternations of the two builds per test (default 3)
#   Both servers run one shard with --appendonly no on free loopback ports.
set -euo pipefail

before=${1:?the binary before the change}
after=${2:?the binary after the change}
tests=${3:-set,get}
requests=${4:-400000}
pipeline=${5:-16}
rounds=${6:-3}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
ticks_per_second=$(getconf CLK_TCK)

before_port=$(free_port)
after_port=$(free_port)
"$before" --port 0 --resp-port "$before_port" --metrics no --shards 1 --appendonly no \
  --log-level warn >/dev/null 2>&1 &
before_pid=$!
"$after" --port 0 --resp-port "$after_port" --metrics no --shards 1 --appendonly no \
  --log-level warn >/dev/null 2>&1 &
after_pid=$!
trap 'kill $before_pid $after_pid 2>/dev/null' EXIT
sleep 1

echo "| test | P | before CPU s/M | after CPU s/M | change |"
echo "|---|---|---|---|---|"
for test in ${tests//,/ }; do
  declare -A ticks=([before]=0 [after]=0)
  for _ in $(seq "$rounds"); do
    for side in before after; do
      if [ "$side" = before ]; then port=$before_port pid=$before_pid; else port=$after_port pid=$after_pid; fi
      start=$(cpu_ticks "$pid")
      redis-benchmark -h 127.0.0.1 -p "$port" -c 50 -n "$requests" -r 100000 -P "$pipeline" \
        -t "$test" -q >/dev/null 2>&1
      ticks[$side]=$((ticks[$side] + $(cpu_ticks "$pid") - start))
    done
  done
  python3 -c 'import sys
b, a, hz, n = (float(x) for x in sys.argv[1:5])
per = lambda t: t / hz / n * 1e6
print(f"| {sys.argv[5]} | {sys.argv[6]} | {per(b):.3f} | {per(a):.3f} | {100 * (a - b) / b:+.0f}% |")' \
    "${ticks[before]}" "${ticks[after]}" "$ticks_per_second" "$((requests * rounds))" "$test" "$pipeline"
done
