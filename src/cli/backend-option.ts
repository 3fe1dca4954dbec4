/**
 * `--backend cpu|cuda` for the commands that run a model. The CUDA backend (and koffi with it) is
 * imported only when asked for; no driver or GPU becomes an InputError naming the reason.
 */
import { Option } from 'commander';
import type { Backend } from '../model/backend.js';
import type { CalibrationPlacement } from '../quantize/quantize-model.js';
import { cpuBackend } from '../backends/cpu/cpu-backend.js';
import { w4a8KernelLine } from '../backends/cpu/int-linear-wasm-kernel.js';
import { InputError } from '../errors.js';
import { loadModel } from '../backends/load.js';
import { modelEngine, type SequenceEngine } from '../model/engine.js';
import { readModel, type ModelLoadOptions, type ReadModel } from '../model/load.js';
import { createModel } from '../model/prepare.js';
import type { CudaContext as CudaContextType } from '../backends/cuda/context.js';
import type { CudaBackend } from '../backends/cuda/cuda-backend.js';
import type { ModelDir } from '../model/model-dir.js';
import type { ModelTokenizer } from '../io/tokenizer.js';

export type BackendName = 'cpu' | 'cuda';

export const backendOption = (): Option =>
  new Option('--backend <name>', 'where the model runs: cpu, or cuda (an NVIDIA GPU)')
    .choices(['cpu', 'cuda'])
    .default('cpu');

export interface OpenedBackend {
  readonly backend: Backend<unknown>;
  /** One line on where the linear layers ran (empty for the CPU). */
  summary(): string;
  close(): void;
}

/** One line on where the exact CUDA backend's linear layers run. */
function placementsSummary(backend: CudaBackend): string {
  const p = backend.placements();
  const gpu = Object.entries(p.gpu).filter(([, n]) => n > 0).map(([kind, n]) => `${n} ${kind.toUpperCase()}`).join(', ');
  const cpu = p.cpu.map((c) => `${c.layers} (${c.reason})`).join('; ');
  return `cuda (${backend.ctx.info.name}): linear layers on the GPU: ${gpu || 'none'}; on the CPU: ${cpu || 'none'}`;
}

export async function openBackend(name: BackendName): Promise<OpenedBackend> {
  if (name === 'cpu') return { backend: cpuBackend as Backend<unknown>, summary: () => '', close: () => {} };
  const { createCudaBackend } = await import('../backends/cuda/cuda-backend.js');
  const { CudaUnavailableError } = await import('../backends/cuda/libs.js');
  let backend: ReturnType<typeof createCudaBackend>;
  try {
    backend = createCudaBackend();
  } catch (e) {
    if (e instanceof CudaUnavailableError) throw new InputError(`--backend cuda: ${e.message}`);
    throw e;
  }
  return {
    backend,
    summary: () => placementsSummary(backend),
    close: () => backend.dispose(),
  };
}

/**
 * GPTQ / AWQ placed on the named backend: on the CPU nothing to open; on cuda the exact CUDA backend,
 * without graph replay, for the calibration stream (and AWQ's products), and GPTQ's engine (Hessians,
 * factors, column loops; backends/cuda/gptq-cuda.ts), both on one context.
 */
export async function openCalibrationPlacement(name: BackendName): Promise<{ placement: CalibrationPlacement<unknown> | undefined; name: string; close(): void }> {
  if (name === 'cpu') return { placement: undefined, name: 'cpu', close: () => {} };
  const { cudaGptq } = await import('../backends/cuda/gptq-cuda.js');
  const { createCudaBackend } = await import('../backends/cuda/cuda-backend.js');
  const { CudaContext } = await import('../backends/cuda/context.js');
  const { CudaUnavailableError } = await import('../backends/cuda/libs.js');
  let ctx: CudaContextType | undefined;
  const opened: { dispose(): void }[] = [];
  try {
    ctx = new CudaContext(0);
    const engine = cudaGptq(ctx);
    opened.push(engine);
    const calibrationBackend = createCudaBackend({ ctx, graphs: false });
    opened.push(calibrationBackend);
    return {
      placement: { backend: calibrationBackend, gptqEngine: engine } as CalibrationPlacement<unknown>,
      name: `${engine.name}; calibration forward on the GPU`,
      close: () => {
        for (const o of opened.reverse()) o.dispose();
        ctx!.release();
      },
    };
  } catch (e) {
    for (const o of opened.reverse()) o.dispose();
    ctx?.release();
    if (e instanceof CudaUnavailableError) throw new InputError(`--backend cuda: ${e.message}`);
    throw e;
  }
}

/** A model ready to generate from: its engine (engine.ts), tokenizer and source directory. */
export interface OpenedEngine {
  readonly engine: SequenceEngine;
  readonly tokenizer: ModelTokenizer | null;
  readonly source: ModelDir;
  /** One line on where the model runs (empty for the CPU). */
  summary(): string;
  close(): void;
}

/**
 * The model of `dir` on the named backend for generation: the CPU runs the forward pass
 * (modelEngine); cuda runs the CUDA decode engine (backends/cuda/decode-engine.ts: fused float32
 * small ops, fp16 KV cache and lm_head, graphs), not the bit-exact CUDA backend that eval uses.
 */
export async function openEngine(name: BackendName, dir: string, options: ModelLoadOptions, engineOptions: { readonly maxSequences?: number } = {}): Promise<OpenedEngine> {
  if (name === 'cpu') {
    const { model, tokenizer, source } = loadModel(dir, options);
    return { engine: modelEngine(model), tokenizer, source, summary: () => `cpu backend: ${w4a8KernelLine()}`, close: () => {} };
  }
  const { createCudaEngine } = await import('../backends/cuda/decode-engine.js');
  const { CudaContext } = await import('../backends/cuda/context.js');
  const { CudaUnavailableError } = await import('../backends/cuda/libs.js');
  let ctx: InstanceType<typeof CudaContext>;
  try {
    ctx = new CudaContext(0);
  } catch (e) {
    if (e instanceof CudaUnavailableError) throw new InputError(`--backend cuda: ${e.message}`);
    throw e;
  }
  try {
    const { config, weights, tokenizer, source } = readModel(dir, options);
    let engine: ReturnType<typeof createCudaEngine>;
    try {
      engine = createCudaEngine(config, weights, { ctx, ...engineOptions });
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      // a layer no CUDA kernel takes, or experts of a format the grouped launches do not run: the exact
      // backend runs such a layer on the CPU (or each expert on its own) and the rest on the GPU
      process.stderr.write(`note: ${e.message}; using the exact CUDA backend instead of the decode engine\n`);
      return await exactOnCuda(ctx, config, weights, tokenizer, source);
    }
    return {
      engine, tokenizer, source,
      summary: () => engine.describe(),
      close: () => {
        engine.dispose();
        ctx.release();
      },
    };
  } catch (e) {
    ctx.release();
    throw e;
  }
}

/** The model on the exact CUDA backend (layers no kernel takes run on the CPU), as an engine. */
async function exactOnCuda(ctx: CudaContextType, config: ReadModel['config'], weights: ReadModel['weights'], tokenizer: ModelTokenizer | null,
  source: ModelDir): Promise<OpenedEngine> {
  const { createCudaBackend } = await import('../backends/cuda/cuda-backend.js');
  const backend = createCudaBackend({ ctx });
  const model = createModel(config, weights, backend);
  return {
    engine: modelEngine(model), tokenizer, source,
    summary: () => placementsSummary(backend),
    close: () => {
      backend.dispose();
      ctx.release();
    },
  };
}
