#!/usr/bin/env bash
# On the GPU machine, from the project root (.device and dist carried; one device call): the figures issue 17 asks,
# most wanted first, each step skipped with a line when the call's time would not hold it (LIMIT seconds, default 580):
#   1. a batch-1 decode step at 1, 8 and 32 layers (tok/s; the 700 tok/s target), cuda-engine-step
#   2. the decode GEMM per launch at M = 1 and 16 on the three bench shapes against cuBLAS FP16 (the ≤ 12.5 µs and ≥ 3×
#      targets), cuda-kernels --quick
#   3. Table 7: every precision and PyTorch's FP16 graphs at batch 1-64, cuda-batch-e2e (about 130 s on an H100)
#   4. what launch boundaries cost the weight stream, cuda-read-chain
#   5. tokens sampled on the device: sample_rows against the host path (cuda-sampling) and a 32-layer step with greedy
#      and sampled picks (cuda-engine-step --pick)
# Logs, JSON and SVG go to $OUT (the kernel cache too, as with-kernel-cache.sh writes it). Usage:
#   bash scripts/gpu/issue17-figures.sh            (then copy $OUT's files to docs/bench/ with the GPU and date)
set -uo pipefail
. scripts/gpu/steps.sh /tmp/issue17 580
step 60 engine-step node dist/bench/cuda-engine-step.js --layers 1,8,32 --lm-head w8a8 --steps 100
grep -E '^layers|a layer' "$out/engine-step.txt"
step 90 kernels node dist/bench/cuda-kernels.js --ms 1,16 --shapes 4096x22016,4096x12288,11008x4096 --quick --out "$out/kernels"
grep -E '^K=' "$out/kernels.txt" | cut -c1-120
step 170 batch-e2e node dist/bench/cuda-batch-e2e.js --reps 1 --out "$out/e2e"
grep -E '^# intscale (fp16|w4a8-is)|PyTorch fp16 \(CUDA graphs\) │ +1 ' "$out/batch-e2e.txt"
step 60 read-chain node dist/bench/cuda-read-chain.js --layers 1,8,32
tail -6 "$out/read-chain.txt"
step 30 sampling node dist/bench/cuda-sampling.js
grep -E '│ +(1|64) ' "$out/sampling.txt"
step 40 step-pick node dist/bench/cuda-engine-step.js --layers 32 --lm-head w8a8 --steps 100 --pick greedy,sample,greedy,sample
grep -E '^layers' "$out/step-pick.txt"
(cd "$INTSCALE_CUDA_CACHE" && tar -czf "$out/kernel-cache.tar.gz" $(ls | grep '\.cubin$'))
echo "done at $SECONDS s"
