#!/usr/bin/env bash
# Builds the compiled tree of a git ref into .tmp/ab/<name>/dist, laid out like the repository
# (package.json, src/backends/cuda/kernels, bench/kernels beside dist), so that one device call can time two
# versions on the same card. Run here (tsc is a dev dependency; the GPU machine has no compiler for
# TypeScript), then carry .tmp/ab with the working tree's dist and .device.
#   bash scripts/gpu/prepare-ab.sh REF [NAME]      # e.g. prepare-ab.sh main base
# On the device (after `. .device/env.sh`), alternate the builds, e.g.:
#   for i in 1 2; do node .tmp/ab/base/dist/bench/cuda-engine-step.js --layers 8 --steps 100; node dist/bench/cuda-engine-step.js --layers 8 --steps 100; done
set -euo pipefail
ref=${1:?usage: prepare-ab.sh REF [NAME]}
name=${2:-$ref}
root=$(git rev-parse --show-toplevel)
out="$root/.tmp/ab/$name"
work=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$work" >/dev/null 2>&1 || true' EXIT
git -C "$root" worktree add --detach --force "$work" "$ref" >/dev/null
ln -s "$root/node_modules" "$work/node_modules"
rm -rf "$out"
(cd "$work" && npx tsc -p . --outDir "$out/dist")
cp "$work/package.json" "$out/"
mkdir -p "$out/src/backends/cuda/kernels"
cp "$work"/src/backends/cuda/kernels/* "$out/src/backends/cuda/kernels/"
if [ -d "$work/bench/kernels" ]; then   # bench-only kernels (bench/cuda-util.ts looks beside the module)
  mkdir -p "$out/bench/kernels"
  cp "$work"/bench/kernels/* "$out/bench/kernels/"
fi
echo "built $ref ($(git -C "$root" rev-parse --short "$ref")) into ${out#$root/}"
