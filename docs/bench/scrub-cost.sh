#!/usr/bin/env bash
# The background scrub's cost under `stele bench` load (docs/benchmarks.md): a 4-node testnet with
# the checks on with a 1 s pass interval (so the scrub never idles) or off; node CPU from /proc,
# the scrub's step time and blocks checked from each node's metrics.
# Usage: docs/bench/scrub-cost.sh on|off TXS RATE (STELE: the binary, default target/debug/stele)
set -euo pipefail
mode=$1; txs=$2; rate=$3
stele=${STELE:-${CARGO_TARGET_DIR:-target}/debug/stele}
dir=${DIR:-/tmp/stele-scrub-cost}/net-$mode
mkdir -p "$(dirname "$dir")"; rm -rf "$dir"
base=36000
# first start writes the homes; stop it at once, then configure checks
$stele testnet up --dir "$dir" --base-port $base > "$dir.log" 2>&1 &
up=$!
for _ in $(seq 120); do [ -f "$dir/node3/config.toml" ] && curl -s -m1 -o /dev/null http://127.0.0.1:$((base+10)) && break; sleep 1; done
kill -INT $up; wait $up || true
for i in 0 1 2 3; do
  cfg="$dir/node$i/config.toml"
  python3 - "$cfg" "$mode" <<'PY'
import sys, re
path, mode = sys.argv[1], sys.argv[2]
text = open(path).read()
text = re.sub(r"\n\[checks\][^\[]*", "\n", text)
if mode == "on":
    text += "\n[checks]\nenabled = true\nblocks_per_second = 20\npass_interval = \"1s\"\n"
else:
    text += "\n[checks]\nenabled = false\n"
open(path, "w").write(text)
PY
done
$stele testnet up --dir "$dir" --base-port $base >> "$dir.log" 2>&1 &
up=$!
trap 'kill -INT $up 2>/dev/null; wait $up 2>/dev/null' EXIT
for _ in $(seq 120); do curl -s -m1 -o /dev/null http://127.0.0.1:$((base+10)) && break; sleep 1; done
sleep 5
pids=$(pgrep -f "stele start --home $dir" || true)
cpu() { local t=0; for p in $pids; do set -- $(cut -d' ' -f14,15 /proc/$p/stat); t=$((t+$1+$2)); done; echo $t; }
metric() { local s=0; for i in 0 1 2 3; do v=$(curl -s http://127.0.0.1:$((base+3*i+2))/metrics | awk -v n="$1" '$1==n{print $2}'); s=$(python3 -c "print($s+${v:-0})"); done; echo $s; }
c0=$(cpu); s0=$(metric stele_scrub_seconds_total); b0=$(metric stele_scrub_blocks_checked_total); t0=$(date +%s.%N)
nice -n 19 $stele bench --key "$dir/faucet.key.json" --txs $txs --accounts 100 --rate $rate \
  --rpc http://127.0.0.1:$((base+1)) --rpc http://127.0.0.1:$((base+4)) --rpc http://127.0.0.1:$((base+7)) --rpc http://127.0.0.1:$((base+10)) 2>&1 | tail -8
c1=$(cpu); s1=$(metric stele_scrub_seconds_total); b1=$(metric stele_scrub_blocks_checked_total); t1=$(date +%s.%N)
hz=$(getconf CLK_TCK)
python3 - <<PY
wall=$t1-$t0; cpu=($c1-$c0)/$hz; scrub=$s1-$s0; blocks=$b1-$b0
print(f"mode=$mode pids=$(echo $pids | wc -w) wall={wall:.1f}s node_cpu={cpu:.1f}s ({cpu/wall*100:.0f}% of one core, 4 nodes) scrub_step_seconds={scrub:.2f}s ({scrub/wall*100/4:.2f}% of a core per node) blocks_checked={blocks:.0f} ({blocks/wall/4:.1f}/s per node) per_block={scrub/max(blocks,1)*1000:.2f}ms")
PY
