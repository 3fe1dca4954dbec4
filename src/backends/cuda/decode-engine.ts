/**
 * The CUDA decode engine: a model made resident once (engine-weights.ts) and run by a fixed
 * sequence of fused launches over state preallocated when the engine is made (llama2.c's RunState:
 * the residual h, one activation buffer per row form, the q/k/v and gate/up outputs, attention
 * partials, the logits). A decode step is captured once as a CUDA graph and replayed: the host
 * writes the row's (token, position, KV slot) and launches it, then reads the logits.
 *
 *   embed_rows                                     h = E[token]
 *   per layer  rmsnorm_to → q/k/v GEMM (+bias) → rope_kv_write → attention_split → attention_merge
 *              → o GEMM adding into h (+bias) → rmsnorm_to → gate/up GEMM (+bias) → silu_mul_to
 *              → down GEMM adding into h (+bias)
 *   last row   rmsnorm_to → lm_head GEMM (fp16 by default)
 *
 * Each producer (rmsnorm_to, attention_merge, silu_mul_to) writes its row in the form the next GEMM
 * reads (int8 + per-token scale for W4A8/W8A8, fp16 for W4A16 and fp16 layers), so the activation
 * quantization costs no launch of its own; W4A8 decode GEMMs (M ≤ 16) add into h in their
 * epilogue. KV caches are fp16, one pair per layer and sequence slot, found through a table on the
 * device. Arithmetic is float32: this is the fast path, not bit-exact with the CPU (the CUDA backend,
 * cuda-backend.ts, is); the GPU tests bound its logits against the exact backend's.
 */
import { InputError } from '../../errors.js';
import type { ModelConfig } from '../../model/config.js';
import { decodeOneByOne, type Sequence, type SequenceEngine } from '../../model/engine.js';
import { ropeInverseFrequencies } from '../../model/rope.js';
import type { ModelWeights } from '../../model/weights.js';
import type { DeviceBuffer } from './buffer.js';
import { CudaContext } from './context.js';
import { Cublas } from './cublas.js';
import { attentionToCuda, embedRowsCuda, engineSplits, ROW_BYTES, rmsnormToCuda, ropeKvWriteCuda, siluMulToCuda, type EngineAttention, type RowForm, type RowOutput } from './engine-ops.js';
import { describeEngineWeights, freeEngineWeights, uploadEngineWeights, type EngineLinear, type LinearGroup } from './engine-weights.js';
import { cudaGraphRuntime } from './graphs.js';
import { addBiasCuda, addCuda } from './model-ops.js';
import type { FloatPrecision } from './resident-linear.js';
import { hasTensorMaps } from './tensor-map.js';
import { activationOrder, chooseW4A8Config, w4a8Linear, type W4A8Config, type W4A8Layer } from './w4a8.js';
import { w8a8Linear } from './w8a8.js';
import { W4A16_MAX_TOKENS, w4a16Linear } from './w4a16.js';

export interface CudaEngineOptions {
  /** default: a new context on GPU 0 (released by dispose). */
  readonly ctx?: CudaContext;
  /** most tokens one forward pass runs: a longer prompt is fed in chunks (default 256; at most 64 with W4A16 layers). */
  readonly maxChunk?: number;
  /** most sequences open at once (KV slots; default 8). */
  readonly maxSequences?: number;
  /** replay each decode step as one CUDA graph (default true). */
  readonly graphs?: boolean;
  /** float layers (the lm_head, an unquantized model): 'f16' (default) or 'f32' (cuBLAS SGEMM). */
  readonly floatPrecision?: FloatPrecision;
}

export interface CudaEngine extends SequenceEngine {
  readonly ctx: CudaContext;
  /** How the layers run, one line. */
  describe(): string;
  /** Frees the weights, state, sequences and graphs (and the context when the engine opened it). */
  dispose(): void;
}

/** The smallest power of two ≥ n and ≥ 256: attention splits are planned for it, so few graphs serve all capacities. */
const positionBound = (n: number): number => 2 ** Math.ceil(Math.log2(Math.max(256, n)));

export function createCudaEngine(config: ModelConfig, weights: ModelWeights, options: CudaEngineOptions = {}): CudaEngine {
  const ownsContext = options.ctx === undefined;
  const ctx = options.ctx ?? new CudaContext(0);
  const c = config;
  const d = c.hiddenSize, F = c.intermediateSize, H = c.numHeads, KVH = c.numKvHeads, D = c.headDim, L = c.numLayers;
  const maxSequences = options.maxSequences ?? 8;
  const invFreq = ropeInverseFrequencies(D, c.ropeTheta, c.ropeScaling);
  const w = uploadEngineWeights(ctx, c, weights, invFreq, options.floatPrecision ?? 'f16');
  const allLinears = w.layers.flatMap((l) => [...l.qkv.linears, l.o, ...l.gateUp.linears, l.down]).concat(w.lmHead);
  const hasW4A16 = allLinears.some((l) => l.resident.kind === 'w4a16');
  const T = Math.min(options.maxChunk ?? 256, hasW4A16 ? W4A16_MAX_TOKENS : Infinity);
  if (!Number.isInteger(T) || T < 1) throw new RangeError(`maxChunk must be a positive integer, got ${options.maxChunk}`);

  const owned: DeviceBuffer[] = [];
  const alloc = (bytes: number): DeviceBuffer => {
    const b = ctx.alloc(bytes);
    owned.push(b);
    return b;
  };
  const wgmma = ctx.arch === 'sm_90a';
  const tma = wgmma && hasTensorMaps(ctx);
  const sms = ctx.info.multiprocessors;
  const blas = new Cublas(ctx.stream);
  const runtime = options.graphs === false ? null : cudaGraphRuntime(ctx);
  /** decode-step graphs by the position bound their attention split was planned for (null: seen once, not captured yet). */
  const graphs = new Map<number, bigint | null>();
  let kvTable: DeviceBuffer;
  const slots: (DeviceBuffer[] | null)[] = new Array(maxSequences).fill(null);

  // the run state, sized for T rows
  const qkvWidth = H * D + 2 * KVH * D;
  const maxK = Math.max(d, F, H * D);
  let rows: DeviceBuffer, h: DeviceBuffer, tmp: DeviceBuffer, qkvOut: DeviceBuffer, guOut: DeviceBuffer, logits: DeviceBuffer, part: DeviceBuffer;
  let acts: RowOutput[];
  try {
    rows = alloc(T * ROW_BYTES);
    h = alloc(T * d * 4);
    tmp = alloc(T * d * 4);
    qkvOut = alloc(T * qkvWidth * 4);
    guOut = alloc(T * 2 * F * 4);
    logits = alloc(c.vocabSize * 4);
    const worst = Math.max(engineSplits(positionBound(c.maxPositionEmbeddings), T, H, D).partBytes, engineSplits(positionBound(c.maxPositionEmbeddings), 1, H, D).partBytes);
    part = alloc(worst);
    // two activation buffers: a group whose GEMMs read different forms gets one each
    acts = [0, 1].map(() => ({ form: 'int8' as RowForm, values: alloc(T * maxK * 4), scales: alloc(T * 4) }));
    kvTable = alloc(maxSequences * L * 2 * 8);
  } catch (e) {
    for (const b of owned) b.free();
    freeEngineWeights(w);
    blas.destroy();
    if (ownsContext) ctx.release();
    throw e;
  }

  /** The W4A8 kernel configuration for a layer at m rows (the one chooser every launch here uses). */
  const w4a8Config = (layer: W4A8Layer, m: number): W4A8Config => chooseW4A8Config(m, layer.n, layer.k, wgmma, tma, sms);
  /** The row form linear `l` reads at m rows. */
  const formFor = (l: EngineLinear, m: number): RowForm => {
    const r = l.resident;
    if (r.kind === 'w4a8') return activationOrder(w4a8Config(r.layer, m)) === 'fragment' ? 'int8-fragment' : 'int8';
    if (r.kind === 'w8a8') return 'int8';
    return r.kind === 'f32' ? 'f32' : 'f16';
  };
  const act = (i: number, form: RowForm): RowOutput => ({ ...acts[i]!, form });

  const checkForm = (l: EngineLinear, input: RowOutput, m: number): void => {
    if (formFor(l, m) !== input.form) throw new Error(`engine: ${l.resident.kind} layer reads ${formFor(l, m)} rows, was given ${input.form}`);
  };

  /** y [m, n] = input · Wᵀ (+ bias). */
  const runLinear = (l: EngineLinear, input: RowOutput, y: DeviceBuffer, m: number): void => {
    const r = l.resident;
    checkForm(l, input, m);
    if (r.kind === 'w4a8') {
      const config = w4a8Config(r.layer, m);
      w4a8Linear(ctx, r.layer, input.values, input.scales, y, m, config.kind === 'decode' ? { ...config, overlap: true } : config);
    } else if (r.kind === 'w8a8') {
      w8a8Linear(ctx, r.layer, input.values, input.scales, y, m);
    } else if (r.kind === 'w4a16') {
      w4a16Linear(ctx, r.layer, input.values, y, m);
    } else {
      const [ya, xa, wa] = [y.address, input.values.address, r.w.address];
      if (r.kind === 'f16') ctx.onStream(() => blas.gemmF16F32(ya, xa, wa, m, l.n, l.k));
      else ctx.onStream(() => blas.gemmF32(ya, xa, wa, m, l.n, l.k));
    }
    if (l.bias) addBiasCuda(ctx, y, l.bias, m, l.n);
  };

  /** h += input · Wᵀ (+ bias): in the W4A8 decode epilogue where it runs, else through tmp. */
  const addLinear = (l: EngineLinear, input: RowOutput, m: number): void => {
    const r = l.resident;
    const config = r.kind === 'w4a8' ? w4a8Config(r.layer, m) : null;
    if (r.kind === 'w4a8' && config?.kind === 'decode') {
      checkForm(l, input, m);
      w4a8Linear(ctx, r.layer, input.values, input.scales, h, m, { ...config, overlap: true, accumulate: true });
      if (l.bias) addBiasCuda(ctx, h, l.bias, m, l.n);
      return;
    }
    runLinear(l, input, tmp, m);
    addCuda(ctx, h, tmp, m * d);
  };

  /** RMSNorm of h into the form(s) a group's GEMMs read, then the GEMMs; returns each part's output and row stride. */
  const normAndGroup = (norm: DeviceBuffer, g: LinearGroup, out: DeviceBuffer, m: number): { part: DeviceBuffer; ld: number }[] => {
    const forms = [...new Set(g.linears.map((l) => formFor(l, m)))];
    const inputs = new Map(forms.map((form, i) => [form, act(i, form)]));
    for (const input of inputs.values()) rmsnormToCuda(ctx, h, norm, input, m, d, c.rmsNormEps);
    if (g.stacked) {
      runLinear(g.linears[0]!, inputs.get(formFor(g.linears[0]!, m))!, out, m);
      const total = g.widths.reduce((s, n) => s + n, 0);
      let at = 0;
      return g.widths.map((n) => {
        const v = { part: out.view(at * 4, out.bytes - at * 4), ld: total };
        at += n;
        return v;
      });
    }
    let at = 0;
    return g.linears.map((l) => {
      const y = out.view(at, m * l.n * 4);
      at += T * l.n * 4;
      runLinear(l, inputs.get(formFor(l, m))!, y, m);
      return { part: y, ld: l.n };
    });
  };

  const attentionOf = (layer: number): EngineAttention => ({ numHeads: H, numKvHeads: KVH, headDim: D, window: c.slidingWindow ?? 0, kv: kvTable, layer, numLayers: L });

  /** The forward pass of the m rows described in `rows`; the last row's logits land in `logits`. */
  const forwardRows = (m: number, positions: number): void => {
    const split = engineSplits(positions, m, H, D);
    embedRowsCuda(ctx, w.embedding, rows, h, m, d);
    for (let i = 0; i < L; i++) {
      const layer = w.layers[i]!;
      const [q, k, v] = normAndGroup(layer.inputNorm, layer.qkv, qkvOut, m);
      ropeKvWriteCuda(ctx, q!.part, q!.ld, k!.part, v!.part, k!.ld, w.invFreq, rows, m, attentionOf(i));
      const oIn = act(0, formFor(layer.o, m));
      attentionToCuda(ctx, q!.part, q!.ld, rows, m, attentionOf(i), split, part, oIn);
      addLinear(layer.o, oIn, m);
      const [g, u] = normAndGroup(layer.postAttentionNorm, layer.gateUp, guOut, m);
      const downIn = act(0, formFor(layer.down, m));
      siluMulToCuda(ctx, g!.part, u!.part, g!.ld, downIn, m, F);
      addLinear(layer.down, downIn, m);
    }
    const headIn = act(0, formFor(w.lmHead, 1));
    rmsnormToCuda(ctx, h.view((m - 1) * d * 4, d * 4), w.finalNorm, headIn, 1, d, c.rmsNormEps);
    runLinear(w.lmHead, headIn, logits, 1);
  };

  /**
   * One decode step (its row already described): the first step of a split runs eagerly (kernels
   * compile and load outside any capture), the second is captured as a graph, every later one replays it.
   */
  const decodeStep = (positions: number): void => {
    if (!runtime) return forwardRows(1, positions);
    let exec = graphs.get(positions);
    if (exec === undefined) {
      forwardRows(1, positions);
      graphs.set(positions, null);
      return;
    }
    if (exec === null) {
      exec = runtime.capture(() => forwardRows(1, positions));
      graphs.set(positions, exec);
    }
    runtime.launch(exec);
  };

  const open = (capacity: number): Sequence => {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`a sequence needs a positive integer capacity, got ${capacity}`);
    const slot = slots.indexOf(null);
    if (slot < 0) throw new InputError(`the CUDA engine holds ${maxSequences} sequences at once (maxSequences); release one first`);
    const caches: DeviceBuffer[] = [];
    try {
      for (let i = 0; i < 2 * L; i++) caches.push(ctx.alloc(capacity * KVH * D * 2));
    } catch (e) {
      for (const b of caches) b.free();
      throw e;
    }
    slots[slot] = caches;
    ctx.copyToDevice(kvTable.view(slot * L * 16, L * 16), BigUint64Array.from(caches, (b) => BigInt(b.address)));
    const positions = positionBound(capacity);
    let length = 0;
    let released = false;
    const describeRows = (tokens: ArrayLike<number>, from: number, m: number): void => {
      const host = new Int32Array(4 * m);
      for (let r = 0; r < m; r++) {
        const id = tokens[from + r]!;
        if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) throw new RangeError(`token id ${id} at position ${length + r} is outside the vocabulary [0, ${c.vocabSize})`);
        host.set([id, length + r, slot, 0], 4 * r);
      }
      ctx.copyToDevice(rows, host);
    };
    return {
      get length() {
        return length;
      },
      capacity,
      feed(tokens) {
        if (released) throw new Error('feed: this sequence was released');
        if (tokens.length === 0) throw new RangeError('feed: no tokens');
        if (length + tokens.length > capacity) throw new RangeError(`the sequence holds ${capacity} positions; feeding ${tokens.length} more at ${length} exceeds it`);
        if (tokens.length === 1) {
          describeRows(tokens, 0, 1);
          decodeStep(positions);
          length += 1;
        } else {
          for (let from = 0; from < tokens.length; from += T) {
            const m = Math.min(T, tokens.length - from);
            describeRows(tokens, from, m);
            forwardRows(m, positions);
            length += m;
          }
        }
        return ctx.copyToHost(new Float32Array(c.vocabSize), logits);
      },
      release() {
        if (released) return;
        released = true;
        ctx.synchronize();
        for (const b of caches) b.free();
        slots[slot] = null;
      },
    };
  };

  return {
    config: c,
    ctx,
    open,
    // one sequence at a time for now: the kernels already take rows of different sequences (rows, slot table); the batched step is issue 17's next item
    decodeBatch: decodeOneByOne,
    describe: () => `cuda engine (${ctx.info.name}): ${describeEngineWeights(w)}; fp16 KV cache; ${runtime ? 'decode steps as CUDA graphs' : 'no graphs'}`,
    dispose: () => {
      ctx.synchronize();
      if (runtime) for (const exec of graphs.values()) if (exec !== null) runtime.destroy(exec);
      graphs.clear();
      for (const s of slots) for (const b of s ?? []) b.free();
      slots.fill(null);
      for (const b of owned.splice(0)) b.free();
      freeEngineWeights(w);
      blas.destroy();
      if (ownsContext) ctx.release();
    },
  };
}
