#!/usr/bin/env bash
# On the GPU machine, from the repo root (after `npm run build` and `bash ../shared/device/pack.sh`
# here, carrying .device and dist): CUDA tests, then the kernel bench timed per launch, then its
# decode rows (M <= 32) timed back to back (10 launches per event pair, where the overlapped decode
# launch can act). Logs and JSON/SVG go to $OUT (or docs/bench when OUT is unset). Extra arguments go
# to the per-launch bench (e.g. --quick --ms 1,16,4096).
set -uo pipefail
. .device/env.sh
out=${OUT:-docs/bench}
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw --format=csv 2>&1 | tee "$out/gpu.txt"
if command -v cuobjdump >/dev/null; then
  k=src/backends/cuda/kernels
  for f in w4a8_decode w4a8_mma w4a8_wgmma w4a8_wgmma_rs w4a8_wgmma_tma w8a8_decode w8a8_wgmma w4a16_decode; do
    nvcc -cubin -gencode=arch=compute_90a,code=sm_90a -I$k -o /tmp/$f.cubin $k/$f.cu &&
    { echo "== $f"; cuobjdump -sass /tmp/$f.cubin | grep -oE '(LDG|LDS|STS|LDGSTS|IMMA|HMMA|IGMMA|WARPGROUP|I2F|I2FP|IMAD|FFMA|HMUL2|HADD2|PRMT|SHF)[.A-Z0-9]*' | sort | uniq -c; }
  done > "$out/sass.txt" 2>&1
fi
node --test --test-reporter=spec dist/test/backends/cuda/ 2>&1 | tee "$out/test.log" | grep -vE '^\s*$' | tail -30
node dist/bench/cuda-kernels.js --out "$out" "$@" 2>&1 | tee "$out/bench.log"
node dist/bench/cuda-kernels.js --out "$out" --back-to-back 10 --ms 1,2,4,8,16,32 2>&1 | tee "$out/bench-b2b.log"
