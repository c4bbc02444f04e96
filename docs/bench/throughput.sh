#!/usr/bin/env bash
# Committed tx/s and the nodes' CPU under `stele bench` (docs/benchmarks.md): a fresh 4-node
# `stele testnet up`, then `stele bench` against all four RPC ports, the load generator at nice 19
# in its own autogroup so it yields the cores to the nodes; node CPU read from /proc.
# Usage: docs/bench/throughput.sh TXS ACCOUNTS [RATE]   (STELE: the binary, default
# ${CARGO_TARGET_DIR:-target}/debug/stele; DIR: where the network goes, default /tmp/stele-throughput)
set -euo pipefail
txs=$1; accounts=$2; rate=${3:-}
stele=${STELE:-${CARGO_TARGET_DIR:-target}/debug/stele}
dir=${DIR:-/tmp/stele-throughput}/net
base=${BASE_PORT:-37000}
rm -rf "$dir"; mkdir -p "$(dirname "$dir")"
$stele testnet up --dir "$dir" --base-port $base > "$dir.log" 2>&1 &
up=$!
trap 'kill -INT $up 2>/dev/null; wait $up 2>/dev/null' EXIT
for _ in $(seq 180); do curl -s -m1 -o /dev/null http://127.0.0.1:$((base+10)) && break; sleep 1; done
sleep 3
pids=$(pgrep -f " start --home $dir/" || true)
cpu() { local t=0; for p in $pids; do set -- $(cut -d' ' -f14,15 /proc/$p/stat); t=$((t+$1+$2)); done; echo $t; }
c0=$(cpu); t0=$(date +%s.%N)
rate_args=(); [[ -n $rate ]] && rate_args=(--rate "$rate")
(echo 19 > /proc/self/autogroup 2>/dev/null || true
 exec nice -n 19 $stele bench --key "$dir/faucet.key.json" --txs "$txs" --accounts "$accounts" "${rate_args[@]}" \
  --rpc http://127.0.0.1:$((base+1)) --rpc http://127.0.0.1:$((base+4)) --rpc http://127.0.0.1:$((base+7)) \
  --rpc http://127.0.0.1:$((base+10))) 2>&1 | tail -12
c1=$(cpu); t1=$(date +%s.%N)
hz=$(getconf CLK_TCK)
nodes=$(echo $pids | wc -w)
python3 - <<PY
wall=$t1-$t0; cpu=($c1-$c0)/$hz
print(f"nodes=$nodes wall={wall:.1f}s node_cpu={cpu:.1f}s per_transfer_all_nodes={cpu/$txs*1e6:.0f}us")
PY
