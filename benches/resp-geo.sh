#!/usr/bin/env bash
# Redis's geo commands through redis-benchmark against Tessera's RESP port and a private
# Redis, in one run (benches/resp.sh does the measuring): DRIVERS points (default 100000)
# spread evenly over a 30 km square around Rome are loaded into both, then the nearest 10
# within 1 km and 5 km, a 2 km box, GEOPOS, GEODIST, and GEOADD moving drivers (into a
# second key, so the searched set stays as loaded).
#
#   benches/resp-geo.sh [DRIVERS] [REQUESTS]
set -euo pipefail
cd "$(dirname "$0")/.."

drivers=${1:-100000}
requests=${2:-100000}
setup=$(mktemp)
trap 'rm -f "$setup"' EXIT
python3 - "$drivers" >"$setup" <<'PY'
import random, sys
random.seed(7)
n = int(sys.argv[1])
def request(words):
    out = [f"*{len(words)}\r\n"]
    for w in words:
        out.append(f"${len(w.encode())}\r\n{w}\r\n")
    return "".join(out)
batch = []
for i in range(n):
    lon = 12.4964 + random.uniform(-0.18, 0.18)
    lat = 41.9028 + random.uniform(-0.135, 0.135)
    batch += [f"{lon:.6f}", f"{lat:.6f}", f"driver:{i:012d}"]
    if len(batch) == 300 or i == n - 1:
        sys.stdout.write(request(["GEOADD", "drivers"] + batch))
        batch = []
PY
center="12.4964 41.9028"
commands="GEOSEARCH drivers FROMLONLAT $center BYRADIUS 1 km ASC COUNT 10"
commands+="|GEOSEARCH drivers FROMLONLAT $center BYRADIUS 5 km ASC COUNT 10"
commands+="|GEOSEARCH drivers FROMLONLAT $center BYBOX 2 2 km"
commands+="|GEOPOS drivers driver:__rand_int__"
commands+="|GEODIST drivers driver:000000000001 driver:000000000002 km"
commands+="|GEOADD moving $center driver:__rand_int__"
RESP_TESTS="" RESP_SETUP="$setup" RESP_COMMANDS="$commands" benches/resp.sh "$requests" 1
