#!/usr/bin/env bash
# On the GPU machine, from the repo root (after `npm run build` and `bash ../shared/device/pack.sh`
# here, carrying .device and dist): resource report + SASS counts of the W8A8 / W4A16 kernels,
# their GPU tests, the configuration sweep (bench/cuda-w8-sweep.ts), then (unless SKIP_BENCH=1)
# the full kernel bench. Everything is logged under $OUT (or docs/bench/tmp when OUT is unset).
set -uo pipefail
. .device/env.sh
out=${OUT:-docs/bench/tmp}
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw --format=csv 2>&1 | tee "$out/gpu.txt"
k=src/backends/cuda/kernels
{
  for spec in "w8a8_wgmma:" "w8a8_wgmma:-DSCALE_INT=0" "w8a8_wgmma:-DWGS=2 -DSTAGES=4" "w8a8_decode:" "w8a8_decode:-DMT=2" "w4a16_decode:" "w4a16_decode:-DMT=2 -DNTW=2"; do
    f=${spec%%:*}; d=${spec#*:}
    echo "== $f $d"
    nvcc -cubin -gencode=arch=compute_90a,code=sm_90a -I$k $d -Xptxas -v -o /tmp/$f.cubin $k/$f.cu 2>&1 | grep -E 'registers|spill|warn'
    command -v cuobjdump >/dev/null && cuobjdump -sass /tmp/$f.cubin | grep -oE '(LDG|LDS|STS|LDGSTS|IMMA|HMMA|IGMMA|WARPGROUP|I2F|I2FP|IMAD|FFMA|HMUL2|HADD2|HFMA2|PRMT|LOP3|SHF)[.A-Z0-9]*' | sort | uniq -c
  done
} > "$out/sass.txt" 2>&1
node --test --test-reporter=spec dist/test/backends/cuda/gpu-w8a8-w4a16.test.js dist/test/backends/cuda/fragments-w8-w4a16.test.js 2>&1 | tee "$out/test.txt" | grep -E '^# (pass|fail|skip)|not ok|fail' | head -20
node dist/bench/cuda-w8-sweep.js "$@" 2>&1 | tee "$out/sweep.txt"
[ "${SKIP_BENCH:-0}" = 1 ] || node dist/bench/cuda-kernels.js --out "$out" 2>&1 | tee "$out/bench.txt"
