# Sourced by the cluster benches: one-shard cluster nodes on free loopback ports, started
# with `start N` (after `port[N]` and `bus[N]` are set), reached with `cli PORT ARGS...`,
# all killed and their folder removed on exit.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
declare -A pid port bus
cleanup() { for n in "${!pid[@]}"; do kill "${pid[$n]}" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

start() {
  ./target/release/tessera-server --port "${port[$1]}" --resp no --shards 1 --appendonly no \
    --dir "$work/n$1" --log-level warn --cluster-enabled yes --cluster-node-id "$1" \
    --cluster-bus-port "${bus[$1]}" >>"$work/n$1.out" 2>>"$work/n$1.err" &
  pid[$1]=$!
  for _ in $(seq 100); do ./target/release/tessera-cli -p "${port[$1]}" PING >/dev/null 2>&1 && return; sleep 0.05; done
  echo "node $1 did not start" >&2; exit 1
}
cli() { local p=$1; shift; ./target/release/tessera-cli -p "$p" "$@"; }
