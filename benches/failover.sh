#!/usr/bin/env bash
# Failover time on this machine: two primaries, each with one replica, under a write load
# from tessera-bench clients (following redirects, as an application does). Each round
# kill -9s a primary that is not the Raft leader and times, from the kill, the first SET
# to one of its keys that the new primary (its replica) acknowledges; the killed node is
# then restarted, comes back as a replica of its heir and copies it, and the next round
# kills the other pair's primary or the heir. Prints each round, the median and the worst,
# and the load's errors (requests in flight at a kill fail with a lost connection).
#
# With --leader each round kills the primary that is the Raft leader instead (the others
# first elect a leader, which then waits out the dead primary's lease); while the leader
# is a replica, that replica is killed and restarted, untimed, until a primary leads.
#
#   benches/failover.sh [ROUNDS] [--leader]     default 10
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-10}
kill_leader=${2:-}
# Seconds of load per round: a leader round may first move the leadership on.
per_round=10
[ "$kill_leader" = --leader ] && per_round=20
cargo build --release -q -p tessera-server -p tessera-bench -p tessera-cli --bins

# shellcheck source=benches/cluster-nodes.sh
source benches/cluster-nodes.sh
for n in 1 2 3 4; do port[$n]=$(free_port); bus[$n]=$(free_port); start "$n"; done
info() { cli "${port[$1]}" --json cluster info; }
field() { python3 -c "import json,sys; v=json.load(sys.stdin).get('$1'); print('' if v is None else v)"; }

# Nodes 1 and 2 own the slots; 3 replicates 1 and 4 replicates 2.
cli "${port[1]}" cluster create --replicas 1 "127.0.0.1:${port[1]}" "127.0.0.1:${port[2]}" \
  "127.0.0.1:${port[3]}" "127.0.0.1:${port[4]}" >/dev/null
wait_ok() { for _ in $(seq 200); do [ "$(info "$1" | field state)" = ok ] && return; sleep 0.05; done; }
for n in 1 2 3 4; do wait_ok "$n"; done

./target/release/tessera-bench -p "${port[1]}" --follow -k 20000 -w load -c 20 >/dev/null
./target/release/tessera-bench -p "${port[1]}" --follow -k 20000 -w set -c 10 \
  --duration $((rounds * per_round + 10)) --json >"$work/load.json" 2>/dev/null &
load=$!

times=()
round=0
shuffles=0
while [ "${#times[@]}" -lt "$rounds" ]; do
  leader=
  for n in 1 2 3 4; do [ -n "$leader" ] || leader=$(info "$n" 2>/dev/null | field leader || true); done
  victim=
  for n in 1 2 3 4; do
    if [ "$kill_leader" = --leader ]; then [ "$n" = "$leader" ] || continue
    else [ "$n" = "$leader" ] && continue; fi
    i=$(info "$n")
    if [ -z "$(echo "$i" | field replica_of)" ] && [ "$(echo "$i" | field slots_owned)" -gt 0 ]; then victim=$n; break; fi
  done
  if [ -z "$victim" ]; then
    # The leader is a replica: move the leadership on, untimed.
    shuffles=$((shuffles + 1))
    [ "$shuffles" -le 20 ] || { echo "the leadership never landed on a primary" >&2; exit 1; }
    kill -9 "${pid[$leader]}"; wait "${pid[$leader]}" 2>/dev/null || true
    sleep 1.5
    start "$leader"; wait_ok "$leader"
    continue
  fi
  round=$((round + 1))
  heir=
  for n in 1 2 3 4; do [ "$(info "$n" | field replica_of)" = "$victim" ] && heir=$n; done
  # A key in one of the victim's slots (Redis Cluster's CRC16, no hash tag).
  key=$(cli "${port[$victim]}" --json cluster slots | python3 -c "
import json, sys
def crc16(data):
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc
owned = [(a, b) for a, b, owner in json.load(sys.stdin)['ranges'] if owner == $victim]
k = next(k for k in range(100000) if any(a <= crc16(f'probe:{k}'.encode()) % 16384 <= b for a, b in owned))
print(f'probe:{k}')")
  began=$(date +%s%N)
  kill -9 "${pid[$victim]}"
  until cli "${port[$heir]}" SET "$key" after >/dev/null 2>&1; do :; done
  ended=$(date +%s%N)
  ms=$(( (ended - began) / 1000000 ))
  times+=("$ms")
  echo "round $round: killed node $victim (leader $leader), node $heir took its writes after $ms ms"
  wait "${pid[$victim]}" 2>/dev/null || true
  start "$victim"
  for _ in $(seq 200); do
    [ "$(info "$victim" | field replica_of)" = "$heir" ] && [ "$(info "$victim" | field replicated)" -gt 0 ] && break
    sleep 0.05
  done
  wait_ok "$victim"
done
wait "$load" || true
python3 - "${times[@]}" <<PY
import json, statistics, sys
t = sorted(int(x) for x in sys.argv[1:])
r = json.load(open("$work/load.json"))
print(f"kill -9 to first acknowledged write on the new primary over {len(t)} kills: "
      f"median {statistics.median(t):.0f} ms, best {t[0]} ms, worst {t[-1]} ms")
print(f"load: {r['requests']} SETs at {r['ops_per_second']:,.0f} ops/s, {r['errors']} errors, p99 {r['p99_us']} µs")
PY
