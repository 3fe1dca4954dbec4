#!/usr/bin/env bash
# On the GPU machine, from the project root (.device and dist carried; one device call): what the 35th session wrote
# and could not run (docs/cuda-notes.md), most wanted first, each step skipped with a line when the call's time would not
# hold it (LIMIT seconds, default 575):
#   1. the TMA wgmma kernel with 32- and 64-token tiles against the chooser's config at M = 32 and 16 on the four 7B
#      shapes (cuda-sweep --configs: each config checked bit for bit first)
#   2. the engine's split-K workspace under captured graphs (engine-workspace.test: a 200-row prefill after steps
#      captured at 12 rows with 32-token tiles)
#   3. what binds the decode kernel at 32 rows (ncu of w4a8_decode on 4096·22016)
#   4. the GEMM tests, 32- and 64-token tiles included (gpu-linear.test, ~150-250 s)
# Logs go to $OUT. Usage: bash scripts/gpu/token-tile-checks.sh
set -uo pipefail
[ -f .device/env.sh ] && . .device/env.sh
out=${OUT:-/tmp/token-tile-checks}
mkdir -p "$out"
export INTSCALE_CUDA_CACHE=${INTSCALE_CUDA_CACHE:-/tmp/intscale-kc}
mkdir -p "$INTSCALE_CUDA_CACHE"
[ -d .device/kernel-cache ] && cp -n .device/kernel-cache/*.cubin "$INTSCALE_CUDA_CACHE"/ 2>/dev/null
LIMIT=${LIMIT:-575}
step() {
  local need=$1 most=$2 name=$3; shift 3
  if (( SECONDS + need > LIMIT )); then echo "SKIP $name: ${need} s wanted, $((LIMIT - SECONDS)) s left"; return; fi
  local allow=$((LIMIT - SECONDS)); (( allow > most )) && allow=$most
  echo "== [$SECONDS s] $name: $*"
  timeout -k 5 $allow "$@" > "$out/$name.txt" 2>&1
  echo "   exit $? after $SECONDS s"
}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
step 120 220 sweep node dist/bench/cuda-sweep.js --out "$out/sweep" --shapes 4096x22016,11008x4096,4096x12288,4096x4096 --ms 32,16 --rounds 3 \
  --configs '[{"kind":"wgmma-tma","STAGES":4},{"kind":"wgmma-tma","STAGES":4,"BT":32},{"kind":"wgmma-tma","STAGES":4,"BT":32,"KS":2},{"kind":"wgmma-tma","STAGES":8,"BT":32,"KS":4},{"kind":"wgmma-tma","STAGES":6,"BT":64,"KS":2}]'
grep -E '^K=|Error|differs' "$out/sweep.txt" 2>/dev/null | sed 's/"kind":"wgmma-tma",//g; s/ (p10[^)]*)//g' | cut -c1-260
step 30 100 engine-workspace node --test dist/test/backends/cuda/engine-workspace.test.js
grep -E '^# (pass|fail|skip)|^not ok|message:' "$out/engine-workspace.txt" 2>/dev/null | cut -c1-200
step 40 60 ncu-decode-m32 ncu --clock-control none --kernel-name w4a8_decode --launch-skip 2 --launch-count 1 \
  --section SpeedOfLight --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis --section WarpStateStats --section Occupancy \
  node dist/bench/cuda-kernels.js --out /tmp/ncu-bench --ms 32 --shapes 4096x22016 --quick
grep -E 'Duration|DRAM Throughput|L2 Cache Throughput|L1/TEX Cache Throughput|Compute \(SM\) Throughput|Issue Slots Busy|No Eligible|Achieved Occupancy|Warp Cycles Per Issued|==ERR' "$out/ncu-decode-m32.txt" 2>/dev/null | sed 's/  */ /g'
step 150 400 gpu-linear node --test dist/test/backends/cuda/gpu-linear.test.js
grep -E '^# (pass|fail|skip)|^not ok|message:' "$out/gpu-linear.txt" 2>/dev/null | cut -c1-200
