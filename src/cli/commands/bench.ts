/**
 * `intscale bench <name>`: runs one of the benchmark scripts in bench/ (compiled to dist/bench),
 * passing the remaining arguments through (`--help` too: each script prints its own usage). Benchmarks print what they measured: machine,
 * shapes, repetitions.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { InputError } from '../../errors.js';
import { PACKAGE_ROOT } from '../default-model.js';

const BENCHES = {
  kernels: [
    'cuda-kernels',
    'GPU: cuBLAS FP16 and INT8 vs W4A8 integer / float scale (f32 and f16 output), W8A8, W4A16; K·N ∈ {4096·22016, 4096², 11008·4096}, M = 1…4096 ' +
      '(--ms 1,16,... --shapes KxN,... --quick --back-to-back L --out DIR)',
  ],
  cuda: [
    'cuda-e2e',
    'GPU: prefill and decode tokens/s of a model on the CUDA decode engine and the exact CUDA backend (replayed as graphs / without overlapped launches / op by op) ' +
      '(--model DIR --synthetic LAYERS --backends engine,graphs,serial,direct --fp16 --cpu --reps N)',
  ],
  e2e: [
    'cuda-batch-e2e',
    'GPU: the paper\'s Table 7 on the decode engine: B sequences × 128 tokens in / 128 out, latency and tok/s for FP16, W8A8, W4A16, W4A8 FS and IS, ' +
      'batch 1…64, and a PyTorch FP16 CUDA-graph reference where torch is installed; --shape mixtral-8x7b for the Mixtral analogue (Figure 5c) ' +
      '(--shape llama2-7b|mixtral-8x7b --layers N --batches 1,8,16,32,64 --precisions … --reps N --out DIR --no-torch)',
  ],
  'cuda-moe-kernels': ['cuda-moe-kernels', 'GPU: the grouped expert GEMM (one launch for all experts) vs the dense decode kernel on the same weight bytes, Mixtral-8x7B expert shapes, random routing (--tokens 1,8,16,32,64)'],
  'cuda-engine-step': ['cuda-engine-step', 'GPU: the decode engine\'s step time by layer count (7B shape, random weights): per-layer and fixed cost (--layers 1,8,32 --steps N --batch B --lm-head f16|w8a8 --no-graphs --pick greedy,sample; A/B of the folds: --rope-in-attention, --fuse-swiglu, --norm-in-gemm, --quantize-in-tail on,off --rounds N)'],
  'cuda-sampling': ['cuda-sampling', 'GPU: the next tokens picked on the device (sample_rows: temperature + top-p; argmax_rows) against the logits copied back and picked on the host, random logits (--rows 1,8,32,64 --vocab N)'],
  'cuda-gptq': ['cuda-gptq', 'GPU: GPTQ\'s matrices for one LLaMA-2-7B-shaped layer (Hessians, factors, column loops), random data (--windows 128 --seq-len 2048 --layers 32)'],
  'cuda-step-ops': ['cuda-step-ops', 'GPU: the time of each op of a 7B-shaped decode step, each captured in a CUDA graph (--context N)'],
  cpu: ['cpu-e2e', 'CPU: prefill and decode tokens/s of a model in float32, W4A8 IS and W4A8 FS'],
  'cpu-vs-llamacpp': ['cpu-vs-llamacpp', 'CPU: intscale vs llama.cpp on the same cores, interleaved rounds: W4A8 IS vs Q4_0 and f32 vs F32 tokens/s, and the embedded model\'s perplexity under llama.cpp\'s protocol on both (--anchors DIR --threads N --rounds N --shape h,L,ffn,H,KVH,V --no-perplexity)'],
  'quantize-7b': ['quantize-7b', 'CPU: quantize a LLaMA-2-7B-shaped random f16 checkpoint (written first, 13.5 GB of disk), time and peak RSS (--methods rtn,gptq,awq --calib FILE)'],
  'cpu-step-ops': ['cpu-step-ops', 'CPU: the time of each op of a decode step of a synthetic LLaMA (--layers --hidden --ffn --heads --vocab)'],
  'cpu-batch-decode': ['cpu-batch-decode', 'CPU: a decode step of B sequences at once (continuous batching), ms and tok/s per batch size (--embedded --layers N --batches 1,4,8)'],
  'serve-load': ['serve-load', 'the server under load: N concurrent streaming clients, req/s, tok/s, first-token and token-gap p50/p99, answers checked against solo, the server\'s RSS and reachable JS heap after a warm-up and as it runs (--levels 1,4,16,64 --requests N --seconds N --backend cpu|cuda --server-process)'],
  'cpu-gptq': ['cpu-gptq', 'CPU: GPTQ\'s factor of H⁻¹ by size and one whole GPTQ layer, random data (--sizes 1024,2048 --layer N,K)'],
  'cpu-matmul': ['cpu-matmul', 'CPU: f32 matmul, JS vs WASM SIMD, 1 vs all threads'],
  'cpu-int-linear': ['cpu-int-linear', 'CPU: integer linear kernels (W4A8 IS/FS, W4A16)'],
  accuracy: ['accuracy', 'WikiText-2 perplexity under every quantization setting → docs/accuracy.md'],
} as const;

export const benchCommand = new Command('bench')
  .description(`run a benchmark: ${Object.keys(BENCHES).join(', ')} (extra arguments are passed on; \`intscale bench NAME --help\` prints that benchmark's usage)`)
  .argument('[name]', Object.entries(BENCHES).map(([k, [, d]]) => `${k}: ${d}`).join('\n'))
  .argument('[args...]', 'arguments for the benchmark script')
  .helpOption(false) // --help after a name goes to the script; alone it prints this command's help (below)
  .allowUnknownOption()
  .action((name: string | undefined, args: string[], _options: unknown, command: Command) => {
    if (name === undefined) command.help({ error: true }); // exits 1, as a missing argument does
    if (name === '--help' || name === '-h') {
      command.outputHelp();
      return;
    }
    const entry = BENCHES[name as keyof typeof BENCHES];
    if (entry === undefined) throw new InputError(`unknown benchmark "${name}"; choose one of ${Object.keys(BENCHES).join(', ')}`);
    const script = path.join(PACKAGE_ROOT, 'dist', 'bench', `${entry[0]}.js`);
    if (!fs.existsSync(script)) throw new InputError(`${script} not found: run \`npm run build\` first`, { file: script });
    const r = spawnSync(process.execPath, [script, ...args], { stdio: 'inherit' });
    process.exitCode = r.status ?? 1;
  });
