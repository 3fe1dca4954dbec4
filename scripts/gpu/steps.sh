# Sourced by the one-call GPU scripts (issue17-figures.sh, token-tile-checks.sh) from the project root, as
#   . scripts/gpu/steps.sh DEFAULT_OUT DEFAULT_LIMIT
# It loads .device/env.sh, seeds $INTSCALE_CUDA_CACHE from .device/kernel-cache (as with-kernel-cache.sh), sets
# `out` ($OUT, else DEFAULT_OUT) and LIMIT (the call's seconds, else DEFAULT_LIMIT), prints the GPU, and defines
#   [MOST=S] step NEED NAME COMMAND...
# which runs COMMAND into $out/NAME.txt when NEED seconds of LIMIT remain (for at most what remains, or MOST seconds),
# and otherwise prints a SKIP line.
[ -f .device/env.sh ] && . .device/env.sh
out=${OUT:-$1}
mkdir -p "$out"
export INTSCALE_CUDA_CACHE=${INTSCALE_CUDA_CACHE:-/tmp/intscale-kc}
mkdir -p "$INTSCALE_CUDA_CACHE"
[ -d .device/kernel-cache ] && cp -n .device/kernel-cache/*.cubin "$INTSCALE_CUDA_CACHE"/ 2>/dev/null
LIMIT=${LIMIT:-$2}
step() {
  local need=$1 name=$2; shift 2
  if (( SECONDS + need > LIMIT )); then echo "SKIP $name: ${need} s wanted, $((LIMIT - SECONDS)) s left"; return; fi
  local allow=$((LIMIT - SECONDS))
  [ -n "${MOST:-}" ] && (( allow > MOST )) && allow=$MOST
  echo "== [$SECONDS s] $name: $*"
  timeout -k 5 $allow "$@" > "$out/$name.txt" 2>&1
  echo "   exit $? after $SECONDS s"
}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
