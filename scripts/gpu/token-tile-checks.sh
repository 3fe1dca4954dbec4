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
. scripts/gpu/steps.sh /tmp/token-tile-checks 575
MOST=220 step 120 sweep node dist/bench/cuda-sweep.js --out "$out/sweep" --shapes 4096x22016,11008x4096,4096x12288,4096x4096 --ms 32,16 --rounds 3 \
  --configs '[{"kind":"wgmma-tma","STAGES":4},{"kind":"wgmma-tma","STAGES":4,"BT":32},{"kind":"wgmma-tma","STAGES":4,"BT":32,"KS":2},{"kind":"wgmma-tma","STAGES":8,"BT":32,"KS":4},{"kind":"wgmma-tma","STAGES":6,"BT":64,"KS":2}]'
grep -E '^K=|Error|differs' "$out/sweep.txt" 2>/dev/null | sed 's/"kind":"wgmma-tma",//g; s/ (p10[^)]*)//g' | cut -c1-260
MOST=100 step 30 engine-workspace node --test dist/test/backends/cuda/engine-workspace.test.js
grep -E '^# (pass|fail|skip)|^not ok|message:' "$out/engine-workspace.txt" 2>/dev/null | cut -c1-200
MOST=60 step 40 ncu-decode-m32 ncu --clock-control none --kernel-name w4a8_decode --launch-skip 2 --launch-count 1 \
  --section SpeedOfLight --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis --section WarpStateStats --section Occupancy \
  node dist/bench/cuda-kernels.js --out /tmp/ncu-bench --ms 32 --shapes 4096x22016 --quick
grep -E 'Duration|DRAM Throughput|L2 Cache Throughput|L1/TEX Cache Throughput|Compute \(SM\) Throughput|Issue Slots Busy|No Eligible|Achieved Occupancy|Warp Cycles Per Issued|==ERR' "$out/ncu-decode-m32.txt" 2>/dev/null | sed 's/  */ /g'
step 150 gpu-linear node --test dist/test/backends/cuda/gpu-linear.test.js
grep -E '^# (pass|fail|skip)|^not ok|message:' "$out/gpu-linear.txt" 2>/dev/null | cut -c1-200
