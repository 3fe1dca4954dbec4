#!/usr/bin/env bash
# On the GPU machine, from the project root (.device and dist carried; one device call, LIMIT seconds, default 580): the
# checks the 38th session left (docs/cuda-notes.md), most wanted first, each step skipped with a line when the call's time
# would not hold it:
#   1. the chooser's WK 4 on wide layers at 17-32 rows in the engine at batch 32, against WK 8 on every layer (before)
#   2. WK 4 against WK 8 on gate/up at 20, 24 and 32 rows as GEMMs; WK 4 at 16 rows
#   3. its GPU tests: the engine with 4 / 8 / 16 k-warps at 20 sequences, gpu-linear's integer-scale shapes
#   4. Table 7 (cuda-batch-e2e), then what launch boundaries cost the weight stream (cuda-read-chain)
# Usage: bash scripts/gpu/k-warps-b32.sh   (then copy $OUT's files to docs/bench/ with the GPU and date)
set -uo pipefail
. scripts/gpu/steps.sh /tmp/k-warps 580
MOST=120 step 60 engine-b32 node dist/bench/cuda-engine-step.js --batch 32 --layers 32 --lm-head w8a8 --steps 50 --decode-mt 4 --decode default,8:0:2 --rounds 3
grep -E '^layers' "$out/engine-b32.txt" | cut -c1-200
MOST=60 step 20 sweep-wide node dist/bench/cuda-sweep.js --shapes 4096x22016 --ms 20,24,32 --rounds 3 --configs '[{"kind":"decode","MT":4,"NTW":1,"WK":8,"MINB":2},{"kind":"decode","MT":4,"NTW":1,"WK":4,"MINB":4}]'
grep -E '^K=' "$out/sweep-wide.txt" | sed -E 's/ \(p10[^)]*\)//' | cut -c1-170
MOST=40 step 20 sweep-m16 node dist/bench/cuda-sweep.js --shapes 4096x22016,4096x12288 --ms 16 --rounds 3 --configs '[{"kind":"decode","MT":2,"NTW":2,"WK":4},{"kind":"decode","MT":2,"NTW":1,"WK":4,"MINB":4},{"kind":"decode","MT":2,"NTW":1,"WK":8,"MINB":3}]'
grep -E '^K=' "$out/sweep-m16.txt" | sed -E 's/ \(p10[^)]*\)//' | cut -c1-170
MOST=200 step 60 tests node --test --test-reporter=tap --test-name-pattern='W4A8 integer scale is bit-exact|k-warps a block' dist/test/backends/cuda/gpu-linear.test.js dist/test/backends/cuda/decode-engine.test.js
grep -E '^# (tests|pass|fail)|^not ok' "$out/tests.txt"
step 170 batch-e2e node dist/bench/cuda-batch-e2e.js --reps 1 --out "$out/e2e"
grep -E '^# intscale (fp16|w4a8-is)|PyTorch fp16 \(CUDA graphs\) │ +1 ' "$out/batch-e2e.txt"
MOST=60 step 30 read-chain node dist/bench/cuda-read-chain.js --layers 8,32
tail -6 "$out/read-chain.txt" | cut -c1-160
echo "done at $SECONDS s"
