#!/usr/bin/env bash
# Adds what the GPU machine needs beyond ../shared/device/pack.sh's production modules to run the serve
# tests there (INTSCALE_SERVE_BACKEND=cuda node --test dist/test/serve/server.test.js): the `openai`
# client (a dev dependency); drops the type declarations, TypeScript sources, maps, docs and tests of
# every package (~9 MB); and drops the
# Hugging Face Hub client's packages (hub, tasks, gguf: downloads, which no GPU test makes), so that
# .device stays small; the CLI (dist/src/cli/main.js) imports the Hub client, so on the device run the
# benches and tests from dist/bench and dist/test, or pass --keep-hub. A device call carries at most 64 MiB with the working tree: .device (~25 MB of
# it the Node binary) + dist + the tracked tree (~33 MB, 13 MB of it models/tiny-wikitext-moe, which
# no GPU test reads: move it aside for the call and back after). Run after pack.sh.
#   bash ../shared/device/pack.sh && bash scripts/gpu/device-test-deps.sh
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
[ -d .device/node_modules ] || { echo "no .device/node_modules: run ../shared/device/pack.sh first" >&2; exit 1; }
[ -d node_modules/openai ] || { echo "no node_modules/openai: run npm ci first" >&2; exit 1; }
rm -rf .device/node_modules/openai
cp -r node_modules/openai .device/node_modules/openai
rm -rf .device/node_modules/openai/src
find .device/node_modules/openai \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' -o -name '*.md' \) -delete
[ "${1:-}" = --keep-hub ] || rm -rf .device/node_modules/@huggingface/hub .device/node_modules/@huggingface/tasks .device/node_modules/@huggingface/gguf
# what no run reads, from every package: type declarations, TypeScript sources, maps, docs, tests, examples
find .device/node_modules \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.ts' -o -name '*.map' -o -name '*.md' \) -delete
find .device/node_modules -type d \( -name test -o -name tests -o -name docs -o -name benchmarks -o -name example -o -name examples \) -prune -exec rm -rf {} +
du -sh .device/node_modules/openai .device
