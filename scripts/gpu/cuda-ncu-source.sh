#!/usr/bin/env bash
# On the GPU machine (after `. .device/env.sh`): where the register-A wgmma kernel's warps stall, per
# SASS instruction (Nsight Compute SourceCounters, kernels built with -lineinfo), integer scale,
# M=4096, one shape. cuda-prefill times cuBLAS first, then IS with 3 warm-ups: --launch-skip 5 takes
# the 6th IS launch. Writes the per-instruction CSV and its summary (ncu-stalls.py) to OUTDIR.
# Usage: bash scripts/gpu/cuda-ncu-source.sh OUTDIR [KxN] [WGS:STAGES]
set -uo pipefail
out=${1:-${OUT:-/tmp}}
shape=${2:-4096x4096}
rs=${3:-2:4}
export INTSCALE_CUDA_CACHE=/tmp/intscale-kc-lineinfo INTSCALE_NVRTC_LINEINFO=1
ncu --clock-control none --kernel-name w4a8_wgmma_rs --launch-skip 5 --launch-count 1 --section SourceCounters --section WarpStateStats \
  --export /tmp/ncu-source.ncu-rep --force-overwrite \
  node dist/bench/cuda-prefill.js --out /tmp/ncu-bench --ms 4096 --shapes "$shape" --no-mma --rs "$rs" > "$out/ncu-source-log.txt" 2>&1
ncu --import /tmp/ncu-source.ncu-rep --page source --csv --print-source sass > "$out/ncu-source-sass.csv" 2>&1
python3 "$(dirname "$0")/ncu-stalls.py" "$out/ncu-source-sass.csv" 25 | tee "$out/ncu-source-summary.txt"
