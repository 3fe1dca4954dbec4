#!/usr/bin/env bash
# On the GPU machine (from the project root, .device carried): each kernel of a decode step timed by Nsight Compute
# (serialized, so each kernel alone), for the precisions and batch size given, on one random 7B-shaped layer at
# position PROMPT (the mean position of Table 7's decode is 192). Writes $OUT/ncu-step-b$BATCH.csv and, by pass and
# kernel (scripts/gpu/ncu-step.py), $OUT/ncu-step-b$BATCH.txt; prints the totals of each pass. Usage:
#   bash scripts/gpu/ncu-step.sh [BATCH=32] [PRECISIONS=fp16,w4a8-is] [PROMPT=192]
set -uo pipefail
batch=${1:-32}; precisions=${2:-fp16,w4a8-is}; prompt=${3:-192}
out=${OUT:-/tmp}
[ -f .device/env.sh ] && . .device/env.sh
export INTSCALE_CUDA_CACHE=${INTSCALE_CUDA_CACHE:-/tmp/intscale-kc}
csv="$out/ncu-step-b$batch.csv"
ncu --clock-control none --metrics gpu__time_duration.sum --csv \
  node dist/bench/cuda-batch-e2e.js --layers 1 --batches "$batch" --prompt-tokens "$prompt" --out-tokens 3 --reps 1 --no-torch \
  --precisions "$precisions" --out /tmp/ncu-step-e2e > "$csv" 2> "$out/ncu-step-b$batch.err"
echo "ncu exit $?; $(wc -l < "$csv") CSV lines in $csv"
# per precision, in --precisions order: a warm-up run and a timed one, each a prefill and two decode steps
python3 scripts/gpu/ncu-step.py "$csv" > "$out/ncu-step-b$batch.txt"
grep '^== pass' "$out/ncu-step-b$batch.txt"
