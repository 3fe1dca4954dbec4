#!/usr/bin/env bash
# Runs a command on the GPU machine with the NVRTC kernel cache kept between device calls, so the GPU tests and
# benches do not spend a fresh machine's first minutes compiling (gpu-linear.test.js alone compiles every config of its
# ~60 shapes for each scale kind).
# Cubins are keyed by source, defines and NVRTC version (kernel-cache.ts), so a stale one is never used, only
# left unread. In a device call (from the project root, .device carried):
#   bash scripts/gpu/with-kernel-cache.sh node --test dist/test/backends/cuda/gpu-linear.test.js
# It loads .device/env.sh, seeds $INTSCALE_CUDA_CACHE from .device/kernel-cache (carried with .device), runs the
# command, and writes the cache to $OUT/kernel-cache.tar.gz (one file: a call brings back only so many files, and a
# run compiles ~170 cubins). Back here, keep it for the next call:
#   mkdir -p .device/kernel-cache && tar -xzf FILES_AT/kernel-cache.tar.gz -C .device/kernel-cache
# (.device stays within the 64 MiB a call carries: check `du -sh .device dist` before the call.)
set -uo pipefail
root=$(git rev-parse --show-toplevel 2>/dev/null || pwd)
cd "$root"
[ -f .device/env.sh ] && . .device/env.sh
export INTSCALE_CUDA_CACHE=${INTSCALE_CUDA_CACHE:-/tmp/intscale-kc}
mkdir -p "$INTSCALE_CUDA_CACHE"
seeded=0
if [ -d .device/kernel-cache ]; then
  cp -n .device/kernel-cache/*.cubin "$INTSCALE_CUDA_CACHE"/ 2>/dev/null
  seeded=$(find .device/kernel-cache -name '*.cubin' | wc -l)
fi
echo "kernel cache: $INTSCALE_CUDA_CACHE, $seeded cubins carried in" >&2
"$@"
rc=$?
if [ -n "${OUT:-}" ]; then
  (cd "$INTSCALE_CUDA_CACHE" && tar -czf "$OUT/kernel-cache.tar.gz" $(ls | grep '\.cubin$'))
  echo "kernel cache: $(tar -tzf "$OUT/kernel-cache.tar.gz" | wc -l) cubins written to \$OUT/kernel-cache.tar.gz" >&2
fi
exit $rc
