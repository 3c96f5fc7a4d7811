#!/usr/bin/env bash
# What TLS and AUTH cost, side by side: tessera-server and a private redis-server, each
# plain, with a password (every connection authenticated), and over TLS (certificates
# made here with openssl), SET and GET at pipeline 1 and 16, the same clients, keys and
# values on both, in one run. Server CPU comes from /proc/PID/stat before and after each.
#
#   benches/security.sh [REQUESTS] [SHARDS]
#     REQUESTS per test (default 500000), SHARDS for Tessera (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."

requests=${1:-500000}
shards=${2:-2}
clients=50
keyspace=100000

if ! command -v redis-server >/dev/null; then
  echo "installing redis-server from Debian" >&2
  apt-get update -qq >/dev/null && apt-get install -y -qq redis-server >/dev/null
fi
cargo build --release -q -p tessera-server -p tessera-bench --bins

certs=$(mktemp -d)
out=$(mktemp)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$certs" "$out"; }
trap cleanup EXIT

# A CA, and a server certificate for 127.0.0.1 it signed.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=bench CA" -keyout "$certs/ca.key" -out "$certs/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$certs/server.key" -out "$certs/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$certs/san.ext"
openssl x509 -req -in "$certs/server.csr" -CA "$certs/ca.pem" -CAkey "$certs/ca.key" \
  -CAcreateserial -days 2 -extfile "$certs/san.ext" -out "$certs/server.pem" 2>/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

row() {
  python3 -c 'import json,sys
r=json.loads(sys.stdin.read())
mode,server=sys.argv[1],sys.argv[2]
w,p,ops=r["workload"],r["pipeline"],r["ops_per_second"]
p50,p99,cpu=r["p50_us"]/1000,r["p99_us"]/1000,r["server_cpu_s_per_million_ops"]
print(f"| {mode} | {server} | {w} | {p} | {ops:.0f} | {p50:.3f} | {p99:.3f} | {cpu:.3f} |")' "$1" "$2"
}

echo "| mode | server | test | pipeline | ops/s | p50 ms | p99 ms | server CPU s per 1M ops |"
echo "|---|---|---|---|---|---|---|---|"
for mode in plain auth tls; do
  tessera_flags=(--port 0 --resp no --shards "$shards" --appendonly no --log-level warn)
  redis_port=$(free_port)
  redis_flags=(--bind 127.0.0.1 --save "" --appendonly no --daemonize no)
  client_flags=()
  case $mode in
    plain) redis_flags+=(--port "$redis_port") ;;
    auth)
      tessera_flags+=(--requirepass bench-pw)
      redis_flags+=(--port "$redis_port" --requirepass bench-pw)
      client_flags+=(--pass bench-pw) ;;
    tls)
      tessera_flags+=(--tls-cert-file "$certs/server.pem" --tls-key-file "$certs/server.key")
      redis_flags+=(--port 0 --tls-port "$redis_port" --tls-cert-file "$certs/server.pem"
        --tls-key-file "$certs/server.key" --tls-ca-cert-file "$certs/ca.pem" --tls-auth-clients no)
      client_flags+=(--cacert "$certs/ca.pem") ;;
  esac
  : >"$out"
  ./target/release/tessera-server "${tessera_flags[@]}" >"$out" &
  tessera_pid=$!
  redis-server "${redis_flags[@]}" >/dev/null &
  redis_pid=$!
  pids=("$tessera_pid" "$redis_pid")
  for _ in $(seq 50); do grep -q listening "$out" && break; sleep 0.1; done
  tessera_port=$(sed -n 's/^listening on .*://p' "$out")
  sleep 0.5
  for pipeline in 1 16; do
    for test in set get; do
      ./target/release/tessera-bench -p "$tessera_port" -w "$test" -c "$clients" -P "$pipeline" \
        -n "$requests" -k "$keyspace" --server-pid "$tessera_pid" --json "${client_flags[@]}" \
        | row "$mode" "tessera ($shards shards)"
      ./target/release/tessera-bench --target redis -p "$redis_port" -w "$test" -c "$clients" \
        -P "$pipeline" -n "$requests" -k "$keyspace" --server-pid "$redis_pid" --json \
        "${client_flags[@]}" | row "$mode" redis
    done
  done
  kill "$tessera_pid" "$redis_pid"
  wait "$tessera_pid" "$redis_pid" 2>/dev/null || true
done
