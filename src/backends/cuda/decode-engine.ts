/**
 * The CUDA decode engine: a model made resident once (engine-weights.ts) and run by a fixed
 * sequence of fused launches over state preallocated when the engine is made (llama2.c's RunState:
 * the residual h, one activation buffer per row form, the q/k/v and gate/up outputs, attention
 * partials, a float row scratch, the logits). A decode step is captured once as a CUDA graph and replayed: the host
 * writes the row's (token, position, KV slot) and launches it, then reads the logits.
 *
 *   embed_rows                                     h = E[token]
 *   per layer  rmsnorm_to → q/k/v GEMM (+bias) → rope_kv_write → attention_split → attention_merge
 *              → quantize_rows → o GEMM adding into h (+bias) → rmsnorm_to → gate/up GEMM (+bias)
 *              → silu_mul_rows → quantize_rows → down GEMM adding into h (+bias)
 *   last row   rmsnorm_to → lm_head GEMM (fp16 by default) [→ argmax_rows or sample_rows: the next tokens picked]
 *
 * In a decode step (each row its sequence's one new position) attention_split does rope_kv_write's
 * work itself (ropeInAttention; by default at up to ROPE_FOLD_MAX_ROWS rows), and a W4A8 gate/up GEMM on the decode kernel
 * closes SwiGLU in its epilogue (fuseSwiGLU, by default at up to SWIGLU_FOLD_MAX_ROWS rows; its rows interleaved by 8 when the model is made resident):
 * w4a8_decode_swiglu → quantize_rows instead of the GEMM → silu_mul_rows → quantize_rows; and a W4A8
 * o or down GEMM on the decode kernel can write the RMSNorm that comes next in its last blocks (normInGemm:
 * w4a8_decode_norm instead of the GEMM → rmsnorm_to), and attention_merge and the SwiGLU GEMM can quantize
 * their rows in their last blocks (quantizeInTail: no quantize_rows); both off by default: slower where measured (H200, docs/cuda-notes.md, 24th session). The same floats either way, one launch fewer each (two
 * a layer for the norm and for the quantization). At one row the last split block of each head merges it
 * (mergeInAttention: no attention_merge launch; the same bytes); at 2-16 rows the small ops launch to overlap the
 * kernel before them, as the decode GEMMs do (overlapSmallOps).
 *
 * A mixture-of-experts layer (mixtral) runs its MLP as engine-moe.ts says: routed on the device, the
 * experts grouped into one launch per GEMM in a decode step, one GEMM per picked expert in a prefill.
 *
 * Each producer writes its row in the form the next GEMM reads (int8 + per-token scale for W4A8/W8A8,
 * fp16 for W4A16 and fp16 layers): rmsnorm_to itself (one block a row), attention and SwiGLU through
 * quantize_rows (their rows spread over many blocks, which pass the row's max |y| on: one block a
 * row was bound by its own instruction issue on one SM, ~10 µs of a 7B layer at batch 1 on the H100); W4A8 decode GEMMs (M ≤ 16) add into h in their
 * epilogue. KV caches are fp16, one pair per layer and sequence slot, found through a table on the
 * device. Arithmetic is float32: this is the fast path, not bit-exact with the CPU (the CUDA backend,
 * cuda-backend.ts, is); the GPU tests bound its logits against the exact backend's.
 */
import { InputError } from '../../errors.js';
import type { ModelConfig } from '../../model/config.js';
import type { Sequence, SequenceEngine } from '../../model/engine.js';
import type { TokenPick } from '../../model/sampling.js';
import { ropeInverseFrequencies } from '../../model/rope.js';
import type { ModelWeights } from '../../model/weights.js';
import { addressTable, type DeviceBuffer } from './buffer.js';
import { CudaContext } from './context.js';
import { Cublas } from './cublas.js';
import { PICK_BYTES, PICK_FIELDS, pickRows, sampleRowsCuda, sampleScratchBytes } from './sample-rows.js';
import { attentionToCuda, argmaxRowsCuda, embedRowsCuda, engineSplits, mergeCounterBytes, wideLoadsFit, pickRowsCuda, ROW_BYTES, rmsnormToCuda, ropeKvWriteCuda, quantizeRowsCuda, rowScratchBytes, siluMulToCuda, TAIL_COUNTER_BYTES, type EngineAttention, type PendingRows, type GateUpRows, type RowForm, type RowNorm, type RowOutput, type RowScratch } from './engine-ops.js';
import { describeEngineWeights, freeEngineWeights, layerLinears, uploadEngineWeights, type EngineLinear, type LinearGroup } from './engine-weights.js';
import { createMoeRunner, type MoeRunner } from './engine-moe.js';
import { cudaGraphRuntime } from './graphs.js';
import { addBiasCuda, addCuda } from './model-ops.js';
import type { LaunchOptions } from './program.js';
import type { FloatPrecision } from './resident-linear.js';
import { hasTensorMaps } from './tensor-map.js';
import { activationOrder, chooseW4A8Config, normTailFits, w4a8DecodeNorm, w4a8DecodeRows, w4a8Linear, w4a8SwigluDecode, type DecodeConfig, type W4A8Config, type W4A8Layer } from './w4a8.js';
import { w8a8Linear } from './w8a8.js';
import { W4A16_MAX_TOKENS, w4a16ExpandedBytes, w4a16Gemm } from './w4a16.js';

export interface CudaEngineOptions {
  /** default: a new context on GPU 0 (released by dispose). */
  readonly ctx?: CudaContext;
  /** most tokens one forward pass runs: a longer prompt is fed in chunks (default 256). */
  readonly maxChunk?: number;
  /** most sequences open at once (KV slots; default 8). */
  readonly maxSequences?: number;
  /** replay each decode step as one CUDA graph (default true). */
  readonly graphs?: boolean;
  /** float layers (the lm_head, an unquantized model): 'f16' (default) or 'f32' (cuBLAS SGEMM). */
  readonly floatPrecision?: FloatPrecision;
  /**
   * A decode step's rope and KV write done inside attention (one launch a layer fewer): true, false (the
   * separate rope_kv_write kernel that prefill passes use), or 'auto' (default: steps of at most
   * ROPE_FOLD_MAX_ROWS rows). The same floats either way.
   */
  readonly ropeInAttention?: boolean | 'auto';
  /**
   * SwiGLU in the epilogue of a W4A8 decode-kernel gate/up GEMM (silu_mul_rows' launch and its pass over
   * the gate/up output saved): true, false (silu_mul_rows after the GEMM), or 'auto' (default: where the
   * kernel takes at most SWIGLU_FOLD_MAX_ROWS rows). The same floats either way.
   */
  readonly fuseSwiGLU?: boolean | 'auto';
  /**
   * The RMSNorm after a residual add written by the W4A8 decode-kernel GEMM that adds (o, down) in its
   * last blocks, one a row (w4a8_decode_norm; rmsnorm_to's launch saved): true, false (rmsnorm_to), or 'auto'
   * (steps of at most NORM_FOLD_MAX_ROWS rows). The same bytes either way. Default false: +4.5% a batch-1 step, +5% at 8 rows (H200).
   */
  readonly normInGemm?: boolean | 'auto';
  /**
   * The rows of attention and SwiGLU quantized for the next GEMM in the last blocks of their producer
   * (attention_merge; the gate/up GEMM where it closes SwiGLU in its epilogue, fuseSwiGLU) instead of a
   * quantize_rows launch: true, false, or 'auto' (passes of at most QUANTIZE_FOLD_MAX_ROWS rows). The same
   * bytes either way. Default false: +18% a batch-1 step, +17% at 8 rows (H200).
   */
  readonly quantizeInTail?: boolean | 'auto';
  /**
   * The rows of attention and SwiGLU (where it closes in the gate/up epilogue, fuseSwiGLU) quantized by the W4A8
   * decode-kernel GEMM that reads them (o, down), each block for itself after its wait (w4a8DecodeRows), instead of a
   * quantize_rows launch: true, false, or 'auto' (passes of at most QUANTIZE_FOLD_MAX_ROWS rows). The same bytes
   * either way. Where quantizeInTail holds too, the tail writes them. Default false: +1.5% a batch-1 step, +52% at 8
   * rows (H100; every block reads the whole f32 rows from L2, docs/cuda-notes.md, 29th session).
   */
  readonly quantizeInGemm?: boolean | 'auto';
  /**
   * Attention's key and value rows read with 16-byte loads, D/8 lanes a position (attention_split_v8), instead of
   * 4-byte loads, a warp a position (attention_split): true, false, or 'auto' (passes of at most
   * WIDE_ATTENTION_MAX_ROWS rows). Sums in another order: the two agree within rounding, not bit for bit. Head
   * dimensions it cannot take (wideLoadsFit) keep the 4-byte loads. Default true, every pass (its engine test, on vs
   * off over GQA, a sliding window and the rope fold, passed on the H100; docs/cuda-notes.md, 28th session): with 'auto'
   * a prompt packed into passes of more rows than alone would take the other loads, and a batch would give its
   * sequences what they get alone only within rounding.
   */
  readonly wideAttention?: boolean | 'auto';
  /**
   * Attention's merge done by the last split block of each (row, head) (attention_split[_v8] with MERGE_FOLD; counters
   * that the merging block sets back to zero) instead of an attention_merge launch: true, false, or 'auto' (default:
   * passes of at most MERGE_FOLD_MAX_ROWS rows). The same bytes either way, so a sequence gets the same whether its
   * step folds or not. Not where quantizeInTail holds (its tail is attention_merge's).
   */
  readonly mergeInAttention?: boolean | 'auto';
  /**
   * The small ops between the GEMMs (rmsnorm_to, attention, quantize_rows) launched to overlap the kernel before them
   * (programmatic dependent launch, as the decode GEMMs are: each lets the next launch at once and waits for the one
   * before), so the next GEMM's blocks can take SMs and load their first weights during the previous GEMM's drain: true,
   * false, or 'auto' (default: passes of 2 to OVERLAP_SMALL_OPS_MAX_ROWS rows). The same bytes either way.
   */
  readonly overlapSmallOps?: boolean | 'auto';
  /**
   * The W4A8 kernel configuration for m rows of an [n, k] layer; default chooseW4A8Config on this device. For
   * benches that compare configurations on the same model (cuda-engine-step --decode).
   */
  readonly chooseW4A8?: (m: number, n: number, k: number) => W4A8Config;
}

/**
 * Where the folds pay, by same-run A/B (H100, 8 random 7B-shaped W4A8 layers, docs/cuda-notes.md, 21st and
 * 22nd sessions): rope in attention −1.5% a step at 1 row, −0.4% at 8, +0.3% at 16 and +0.8% at 32 (every
 * split block rotates its q again, one sincosf a pair since the 22nd session); SwiGLU in the epilogue level at
 * 1 row, −0.9% at 8, −1.7% at 16, −2.6% at 32 (with two blocks per SM kept at 32 rows: without that bound it
 * lost 7% there).
 */
export const ROPE_FOLD_MAX_ROWS = 8;
export const SWIGLU_FOLD_MAX_ROWS = 32;
/**
 * The tails' 'auto' bound: one block a row normalizes (quantizes) the rows once every block of the producer
 * is done, so they were expected to pay at few rows only; they lost at 1 and 8 rows in the same-run A/B (H200,
 * 8 layers: norm tail +2.8 µs a layer, quantize tail +11 µs), so 'auto' is not the default; the bound is a guess
 * (docs/cuda-notes.md, 23rd and 24th sessions).
 */
export const NORM_FOLD_MAX_ROWS = 8;
export const QUANTIZE_FOLD_MAX_ROWS = 8;
/** Most bytes of int8 rows (m·K) a GEMM that quantizes its own rows keeps in a block's shared memory (two blocks a SM). */
const ROWS_IN_GEMM_BYTES = 96 << 10;
/**
 * wideAttention's 'auto' bound: the decode steps it was measured at (bench/cuda-attention.ts, H100, position 192,
 * 32 layers: attention 1.00x at 1 row, 1.09x at 8, 1.15x at 32 and 64; an 8-layer batch-32 engine step -4.3%,
 * batch 1 level; docs/cuda-notes.md, 27th session). Only where the option is 'auto': the default is every pass.
 */
export const WIDE_ATTENTION_MAX_ROWS = 64;
/**
 * mergeInAttention's 'auto' bound, by same-run A/B (H100, 8 random 7B-shaped W4A8 layers, W8A8 lm_head, alternated,
 * docs/cuda-notes.md 30th session): −0.6% a step at 1 row (7 pairs, 6 faster), but +1.9% at 8 rows (4 of 4 slower in the
 * longer call), +1.5% at 16, +4.4% at 32: a launch boundary saved, against every split block's fence and count.
 */
export const MERGE_FOLD_MAX_ROWS = 1;
/**
 * overlapSmallOps' 'auto' rows, by same-run A/B (H100, 8 random 7B-shaped W4A8 layers, W8A8 lm_head, alternated,
 * docs/cuda-notes.md 30th session): −1.9% a step at 8 rows (7 pairs, 6 faster), −1.4% at 16 (4 pairs, 3 faster), level at
 * 32 (2 pairs), but +1.3% at one row (8 pairs, 7 slower): from 2 rows up to 16. At one row again in the 34th session
 * (PREW 2, rope and merge in attention): +2.0% a step at 8 layers, +1.0% at 32 (3 rounds each, H100).
 */
export const OVERLAP_SMALL_OPS_MAX_ROWS = 16;

/** The fold options: how each reads in describe() (and the benches' logs), its 'auto' rows (minRows, 1 unless given, to maxRows), its default. */
export const ENGINE_FOLDS = {
  ropeInAttention: { label: 'rope in attention', maxRows: ROPE_FOLD_MAX_ROWS, fallback: 'auto' },
  fuseSwiGLU: { label: 'SwiGLU in the GEMM epilogue', maxRows: SWIGLU_FOLD_MAX_ROWS, fallback: 'auto' },
  // off by default: correct (bit for bit) but slower at 1 and 8 rows on the H200 (docs/cuda-notes.md, 24th session)
  normInGemm: { label: 'norm in the GEMM tail', maxRows: NORM_FOLD_MAX_ROWS, fallback: false },
  quantizeInTail: { label: 'rows quantized in their producer\'s tail', maxRows: QUANTIZE_FOLD_MAX_ROWS, fallback: false },
  // off by default: correct (bit for bit) but slower at 1 and 8 rows on the H100 (docs/cuda-notes.md, 29th session)
  quantizeInGemm: { label: 'rows quantized by the GEMM that reads them', maxRows: QUANTIZE_FOLD_MAX_ROWS, fallback: false },
  // always, not 'auto': which loads a row gets must not depend on the rows beside it (batch invariance)
  wideAttention: { label: 'attention with 16-byte loads', maxRows: WIDE_ATTENTION_MAX_ROWS, fallback: true },
  mergeInAttention: { label: 'attention merged by its last split block', maxRows: MERGE_FOLD_MAX_ROWS, fallback: 'auto' },
  overlapSmallOps: { label: 'small ops launched to overlap the kernel before', minRows: 2, maxRows: OVERLAP_SMALL_OPS_MAX_ROWS, fallback: 'auto' },
} as const satisfies Record<string, { label: string; minRows?: number; maxRows: number; fallback: boolean | 'auto' }>;
export type EngineFold = keyof typeof ENGINE_FOLDS;
/** The fewest rows at which fold f holds under 'auto' (1 unless its entry says). */
export const foldMinRows = (f: EngineFold): number => (ENGINE_FOLDS[f] as { readonly minRows?: number }).minRows ?? 1;

export interface CudaEngine extends SequenceEngine {
  readonly ctx: CudaContext;
  /**
   * Feeds several of this engine's sequences at once, tokens[i] to sequences[i] (a batched prefill:
   * their rows share each pass); returns each one's logits [vocab] after its last token.
   */
  feedBatch(sequences: readonly Sequence[], tokens: readonly ArrayLike<number>[]): Float32Array[];
  /**
   * feedBatch with each sequence's next token picked on the device, picks[i] for sequences[i] (omitted: every one
   * greedy): the argmax of its logits (argmax_rows) where every pick is greedy, else pickToken's token
   * (sample_rows, model/sampling.ts: the host's token from the same logits and draw); returns only the tokens (4 bytes a
   * sequence back instead of its logits). A decode step (one token each) is one graph, as decodeBatch's.
   */
  feedPicked(sequences: readonly Sequence[], tokens: readonly ArrayLike<number>[], picks?: readonly TokenPick[]): Int32Array;
  /** How the layers run, one line. */
  describe(): string;
  /** Frees the weights, state, sequences and graphs (and the context when the engine opened it). */
  dispose(): void;
}

/** How a pass's logits leave it: all to the host ('none'), or only the tokens picked on the device (argmax_rows, sample_rows). */
type PickBy = 'none' | 'argmax' | 'sample';

/** The smallest power of two ≥ n and ≥ 256: attention splits are planned for it, so few graphs serve all capacities. */
export const positionBound = (n: number): number => 2 ** Math.ceil(Math.log2(Math.max(256, n)));

export function createCudaEngine(config: ModelConfig, weights: ModelWeights, options: CudaEngineOptions = {}): CudaEngine {
  const ownsContext = options.ctx === undefined;
  const ctx = options.ctx ?? new CudaContext(0);
  const c = config;
  const d = c.hiddenSize, F = c.intermediateSize, H = c.numHeads, KVH = c.numKvHeads, D = c.headDim, L = c.numLayers;
  const maxSequences = options.maxSequences ?? 8;
  const foldNames = Object.keys(ENGINE_FOLDS) as EngineFold[];
  /** each fold's setting: the option given, else its default. */
  const folds = Object.fromEntries(foldNames.map((f) => [f, options[f] ?? ENGINE_FOLDS[f].fallback])) as Record<EngineFold, boolean | 'auto'>;
  /** whether fold f holds in a pass of m rows ('auto': within its rows). */
  const holds = (f: EngineFold, m: number): boolean => (folds[f] === 'auto' ? m >= foldMinRows(f) && m <= ENGINE_FOLDS[f].maxRows : folds[f]);
  /** how the folds read in describe(). */
  const setting = (f: EngineFold): string => {
    const [min, max] = [foldMinRows(f), ENGINE_FOLDS[f].maxRows];
    const rows = min > 1 ? `${min} to ${max} rows` : max === 1 ? 'at 1 row' : `up to ${max} rows`;
    return folds[f] === 'auto' ? rows : folds[f] ? 'always' : 'off';
  };
  const foldsText = foldNames.map((f) => `${ENGINE_FOLDS[f].label} ${setting(f)}`).join(', ');
  const invFreq = ropeInverseFrequencies(D, c.ropeTheta, c.ropeScaling);
  let w: ReturnType<typeof uploadEngineWeights>;
  try {
    w = uploadEngineWeights(ctx, c, weights, invFreq, options.floatPrecision ?? 'f16');
  } catch (e) {
    if (ownsContext) ctx.release(); // a model the engine refuses (or cannot hold) leaves no context behind
    throw e;
  }
  const allLinears = w.layers.flatMap(layerLinears).concat(w.lmHead);
  const T = options.maxChunk ?? 256;
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
  /** Frees what the engine made so far and rethrows: a failure while it is made leaves nothing behind. */
  const abandon = (e: unknown): never => {
    for (const b of owned) b.free();
    freeEngineWeights(w);
    blas.destroy();
    if (ownsContext) ctx.release();
    throw e;
  };
  const runtime = options.graphs === false ? null : cudaGraphRuntime(ctx);
  /** decode-step graphs by rows and the position bound their attention split was planned for (null: seen once, not captured yet). */
  const graphs = new Map<string, bigint | null>();
  let kvTable: DeviceBuffer;
  const slots: (DeviceBuffer[] | null)[] = new Array(maxSequences).fill(null);

  // the run state, sized for T rows
  const qkvWidth = H * D + 2 * KVH * D;
  const maxK = Math.max(d, F, H * D);
  let arrivals: DeviceBuffer, mergeCounts: DeviceBuffer, rows: DeviceBuffer, lastRows: DeviceBuffer, nextTokens: DeviceBuffer, h: DeviceBuffer, tmp: DeviceBuffer, qkvOut: DeviceBuffer, guOut: DeviceBuffer, logits: DeviceBuffer, part: DeviceBuffer, rowScratch: RowScratch;
  let acts: RowOutput[];
  let w4a16Scratch: DeviceBuffer | null;
  /** the most rows a step or pass picks tokens for (one a sequence), each one's pick (sample_rows), and their scratch (made at the first sampled call). */
  const pickRowsMax = Math.min(T, maxSequences);
  let tokenPicks: DeviceBuffer;
  let sampleScratch: DeviceBuffer | null = null;
  try {
    arrivals = alloc(TAIL_COUNTER_BYTES); // the tails' counters (w4a8DecodeNorm, w4a8SwigluDecode, attentionToCuda): zero between launches
    arrivals.fill(0);
    mergeCounts = alloc(mergeCounterBytes(T, H)); // mergeInAttention's counters: zero between launches
    mergeCounts.fill(0);
    ctx.landUploads(); // the fill ran on the legacy stream, which does not order with the engine's
    rows = alloc(T * ROW_BYTES);
    lastRows = alloc(T * 4);
    nextTokens = alloc(T * 4);
    tokenPicks = alloc(pickRowsMax * PICK_BYTES);
    h = alloc(T * d * 4);
    tmp = alloc(T * d * 4);
    qkvOut = alloc(T * qkvWidth * 4);
    guOut = alloc(T * 2 * F * 4);
    logits = alloc(Math.min(T, maxSequences) * c.vocabSize * 4);
    const bound = 1 << 30; // any capacity: the splits are capped (ENGINE_MAX_SPLITS, the byte budget)
    const worst = Math.max(...Array.from({ length: T }, (_, i) => engineSplits(bound, i + 1, H, D).partBytes));
    part = alloc(worst);
    const scratchBytes = rowScratchBytes(T, Math.max(H * D, F), H);
    rowScratch = { values: alloc(scratchBytes.values), amax: alloc(scratchBytes.amax) };
    // two activation buffers: a group whose GEMMs read different forms gets one each
    acts = [0, 1].map(() => ({ form: 'int8' as RowForm, values: alloc(T * maxK * 4), scales: alloc(T * 4) }));
    kvTable = alloc(maxSequences * L * 2 * 8);
    // W4A16 layers above the decode kernel's rows are expanded to fp16 here for cuBLAS (w4a16Gemm)
    const expanded = T > W4A16_MAX_TOKENS ? Math.max(0, ...allLinears.map((l) => (l.resident.kind === 'w4a16' ? w4a16ExpandedBytes(l.resident.layer) : 0))) : 0;
    w4a16Scratch = expanded > 0 ? alloc(expanded) : null;
  } catch (e) {
    abandon(e);
  }

  /** The W4A8 kernel configuration for a layer at m rows (the one chooser every launch here uses). */
  const chooseW4A8 = options.chooseW4A8 ?? ((m: number, n: number, k: number) => chooseW4A8Config(m, n, k, wgmma, tma, sms));
  const w4a8Config = (layer: W4A8Layer, m: number): W4A8Config => chooseW4A8(m, layer.n, layer.k);
  /** The row form linear `l` reads at m rows. */
  const formFor = (l: EngineLinear, m: number): RowForm => {
    const r = l.resident;
    if (r.kind === 'w4a8') return activationOrder(w4a8Config(r.layer, m)) === 'fragment' ? 'int8-fragment' : 'int8';
    if (r.kind === 'w8a8') return 'int8';
    return r.kind === 'f32' ? 'f32' : 'f16';
  };
  const act = (i: number, form: RowForm): RowOutput => ({ ...acts[i]!, form });
  /** How the small ops of a pass of m rows launch (overlapSmallOps). */
  const smallOps = (m: number): LaunchOptions => ({ overlapPrevious: holds('overlapSmallOps', m) });

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
      w4a16Gemm(ctx, blas, r.layer, input.values, y, m, () => w4a16Scratch!);
    } else {
      const [ya, xa, wa] = [y.address, input.values.address, r.w.address];
      if (r.kind === 'f16') ctx.onStream(() => blas.gemmF16F32(ya, xa, wa, m, l.n, l.k));
      else ctx.onStream(() => blas.gemmF32(ya, xa, wa, m, l.n, l.k));
    }
    if (l.bias) addBiasCuda(ctx, y, l.bias, m, l.n);
  };

  /**
   * h += input · Wᵀ (+ bias): in the W4A8 decode epilogue where it runs, else through tmp. `then`: the
   * RMSNorm of h the next linear reads, written in this GEMM's tail where it can be (normInGemm); returns
   * whether it was (else the caller runs it).
   */
  const addLinear = (l: EngineLinear, input: RowOutput | PendingRows, m: number, then: RowNorm | null = null): boolean => {
    const r = l.resident;
    const config = r.kind === 'w4a8' ? w4a8Config(r.layer, m) : null;
    if ('pending' in input) {
      // only where readsRows(l, m) said so: a W4A8 decode-kernel GEMM on the register pipeline
      if (r.kind !== 'w4a8' || config?.kind !== 'decode') throw new Error(`engine: a ${r.kind} layer cannot quantize its own rows`);
      w4a8DecodeRows(ctx, r.layer, input.pending, input.P, h, m, { ...config, overlap: true, accumulate: true });
      if (l.bias) addBiasCuda(ctx, h, l.bias, m, l.n);
      return false;
    }
    if (r.kind === 'w4a8' && config?.kind === 'decode') {
      checkForm(l, input, m);
      const launch = { ...config, overlap: true, accumulate: true };
      if (then !== null && l.bias === null && holds('normInGemm', m) && normTailFits(config)) {
        w4a8DecodeNorm(ctx, r.layer, input.values, input.scales, h, m, launch, then, arrivals);
        return true;
      }
      w4a8Linear(ctx, r.layer, input.values, input.scales, h, m, launch);
      if (l.bias) addBiasCuda(ctx, h, l.bias, m, l.n);
      return false;
    }
    runLinear(l, input, tmp, m);
    addCuda(ctx, h, tmp, m * d);
    return false;
  };

  /** The RMSNorm of h that `linears` read next, as a GEMM's tail may write it: null where they read more than one form. */
  const nextNorm = (weight: DeviceBuffer, linears: readonly EngineLinear[], m: number): RowNorm | null => {
    const forms = new Set(linears.map((l) => formFor(l, m)));
    return forms.size === 1 ? { weight, out: act(0, [...forms][0]!), eps: c.rmsNormEps } : null;
  };

  /**
   * RMSNorm of h into the form(s) a group's GEMMs read (unless `normed`: the GEMM before wrote it, as
   * nextNorm says), then the GEMMs; returns each part's output and row stride.
   */
  const normAndGroup = (norm: DeviceBuffer, g: LinearGroup, out: DeviceBuffer, m: number, normed: boolean): { part: DeviceBuffer; ld: number }[] => {
    const forms = [...new Set(g.linears.map((l) => formFor(l, m)))];
    const inputs = new Map(forms.map((form, i) => [form, act(i, form)]));
    if (!normed) for (const input of inputs.values()) rmsnormToCuda(ctx, h, norm, input, m, d, c.rmsNormEps, smallOps(m));
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

  /** The W4A8 decode-kernel launch of a gate/up group at m rows where SwiGLU can close in its epilogue, else null. */
  const swigluEpilogue = (g: LinearGroup, m: number): { layer: W4A8Layer; config: DecodeConfig } | null => {
    const l = g.linears[0]!;
    if (!holds('fuseSwiGLU', m) || !g.stacked || g.interleave !== 8 || l.bias !== null || l.resident.kind !== 'w4a8') return null;
    const config = w4a8Config(l.resident.layer, m);
    return config.kind === 'decode' ? { layer: l.resident.layer, config } : null;
  };

  /**
   * Whether linear `l` quantizes its own input rows at m rows (quantizeInGemm; a quantize tail, where it holds, writes
   * them instead): a W4A8 decode-kernel GEMM on the register pipeline whose rows fit its shared memory.
   */
  const readsRows = (l: EngineLinear, m: number): boolean => {
    if (!holds('quantizeInGemm', m) || holds('quantizeInTail', m) || l.resident.kind !== 'w4a8') return false;
    const config = w4a8Config(l.resident.layer, m);
    return config.kind === 'decode' && (config.STAGES ?? 0) === 0 && m * l.k <= ROWS_IN_GEMM_BYTES;
  };

  /**
   * RMSNorm of h (unless `normed`, as normAndGroup), gate/up, and silu(gate)·up written as `out` for the down projection;
   * or, where the down projection quantizes its own rows (readsRows), left pending in the row scratch (returned).
   */
  const swiglu = (norm: DeviceBuffer, g: LinearGroup, out: RowOutput, m: number, normed: boolean, down: EngineLinear): PendingRows | null => {
    const fused = swigluEpilogue(g, m);
    if (fused !== null) {
      const input = act(0, formFor(g.linears[0]!, m));
      if (!normed) rmsnormToCuda(ctx, h, norm, input, m, d, c.rmsNormEps, smallOps(m));
      const tail = holds('quantizeInTail', m) ? { out, arrivals } : null;
      const partials = w4a8SwigluDecode(ctx, fused.layer, input.values, input.scales, rowScratch.values, rowScratch.amax, m, { ...fused.config, overlap: true }, tail);
      if (tail !== null) return null;
      if (readsRows(down, m)) return { pending: rowScratch, P: partials };
      quantizeRowsCuda(ctx, rowScratch, partials, out, m, F, smallOps(m));
      return null;
    }
    const parts = normAndGroup(norm, g, guOut, m, normed);
    const rows: GateUpRows = g.interleave === 8 ? { interleaved: true, y: guOut, ld: 2 * F } : { interleaved: false, g: parts[0]!.part, u: parts[1]!.part, ld: parts[0]!.ld };
    siluMulToCuda(ctx, rows, out, m, F, rowScratch);
    return null;
  };

  // a mixture of experts' buffers (engine-moe.ts), shared by its layers
  let moeRunner: MoeRunner | null = null;
  if (c.moe) {
    try {
      moeRunner = createMoeRunner(ctx, blas, c, T, maxSequences, { runLinear, formFor });
    } catch (e) {
      abandon(e);
    }
  }

  const attentionOf = (layer: number): EngineAttention => ({ numHeads: H, numKvHeads: KVH, headDim: D, window: c.slidingWindow ?? 0, kv: kvTable, layer, numLayers: L });

  /**
   * The forward pass of the m rows described in `rows`. Logits [picked, vocab] land in `logits`:
   * of every row (picked = m: a decode step), or of the rows listed in `lastRows` (a prefill: the last
   * row of each sequence in it; none when no sequence ends in this pass). `decode`: a decode step
   * (its mixture-of-experts layers route on the device without a host wait, engine-moe.ts).
   */
  const forwardRows = (m: number, positions: number, picked: number, pickBy: PickBy, decode: boolean): void => {
    const merged = holds('mergeInAttention', m) && !holds('quantizeInTail', m) ? { merged: mergeCounts } : {};
    const split = { ...engineSplits(positions, m, H, D), loads: holds('wideAttention', m) && wideLoadsFit(D) ? 16 as const : 4 as const, ...merged };
    embedRowsCuda(ctx, w.embedding, rows, h, m, d);
    let normed = false; // whether the GEMM before wrote the RMSNorm of h that comes next (addLinear's `then`)
    for (let i = 0; i < L; i++) {
      const layer = w.layers[i]!;
      const [q, k, v] = normAndGroup(layer.inputNorm, layer.qkv, qkvOut, m, normed);
      const fold = decode && holds('ropeInAttention', m);
      if (!fold) ropeKvWriteCuda(ctx, q!.part, q!.ld, k!.part, v!.part, k!.ld, w.invFreq, rows, m, attentionOf(i));
      const oIn = act(0, formFor(layer.o, m));
      const oReads = readsRows(layer.o, m);
      attentionToCuda(ctx, q!.part, q!.ld, rows, m, attentionOf(i), split, part, rowScratch, oIn, {
        ...(fold ? { fresh: { k: k!.part, v: v!.part, ld: k!.ld, invFreq: w.invFreq } } : {}),
        rowsBy: oReads ? 'reader' : holds('quantizeInTail', m) ? { tail: arrivals } : 'launch',
        launch: smallOps(m),
      });
      const oRows = oReads ? { pending: rowScratch, P: H } : oIn;
      if (layer.moe !== undefined) {
        addLinear(layer.o, oRows, m);
        moeRunner!.run(layer.moe, layer.postAttentionNorm, h, m, decode);
        normed = false;
        continue;
      }
      normed = addLinear(layer.o, oRows, m, nextNorm(layer.postAttentionNorm, layer.gateUp.linears, m));
      const downIn = act(0, formFor(layer.down, m));
      const downPending = swiglu(layer.postAttentionNorm, layer.gateUp, downIn, m, normed, layer.down);
      const next = i + 1 < L ? nextNorm(w.layers[i + 1]!.inputNorm, w.layers[i + 1]!.qkv.linears, m) : picked === m ? nextNorm(w.finalNorm, [w.lmHead], m) : null;
      normed = addLinear(layer.down, downPending ?? downIn, m, next);
    }
    if (picked === 0) return; // a prefill pass in which no sequence ends
    const headIn = act(0, formFor(w.lmHead, picked));
    if (picked === m) {
      if (!normed) rmsnormToCuda(ctx, h, w.finalNorm, headIn, m, d, c.rmsNormEps, smallOps(m));
    } else {
      pickRowsCuda(ctx, h, lastRows, tmp, picked, d);
      rmsnormToCuda(ctx, tmp, w.finalNorm, headIn, picked, d, c.rmsNormEps);
    }
    runLinear(w.lmHead, headIn, logits, picked);
    if (pickBy === 'argmax') argmaxRowsCuda(ctx, logits, nextTokens, picked, c.vocabSize);
    if (pickBy === 'sample') sampleRowsCuda(ctx, logits, tokenPicks, sampleScratch!, nextTokens, picked, c.vocabSize);
  };

  /**
   * A decode step of m rows (already described): the first step of a shape runs eagerly (kernels
   * compile and load outside any capture), the second is captured as a graph, every later one
   * replays it. Graphs are kept per (rows, position bound, how the next tokens are picked on the device).
   */
  const decodeStep = (m: number, positions: number, pickBy: PickBy): void => {
    if (!runtime) return forwardRows(m, positions, m, pickBy, true);
    const key = `${m}:${positions}:${pickBy}`;
    let exec = graphs.get(key);
    if (exec === undefined) {
      forwardRows(m, positions, m, pickBy, true);
      graphs.set(key, null);
      return;
    }
    if (exec === null) {
      exec = runtime.capture(() => forwardRows(m, positions, m, pickBy, true));
      graphs.set(key, exec);
    }
    runtime.launch(exec);
  };

  /** An open sequence's place in the engine. */
  interface SlotState {
    readonly slot: number;
    readonly capacity: number;
    /** the position bound its attention split is planned for. */
    readonly positions: number;
    length: number;
    released: boolean;
  }
  const states = new Map<Sequence, SlotState>();

  /** Tokens for one sequence's next positions. */
  interface Feed {
    readonly state: SlotState;
    readonly tokens: ArrayLike<number>;
  }

  /** Refuses a feed that cannot run (before anything runs, so a bad one changes nothing). */
  const checkFeed = ({ state, tokens }: Feed, what: string): void => {
    if (state.released) throw new Error(`${what}: this sequence was released`);
    if (tokens.length === 0) throw new RangeError(`${what}: no tokens`);
    if (state.length + tokens.length > state.capacity) throw new RangeError(`the sequence holds ${state.capacity} positions; feeding ${tokens.length} more at ${state.length} exceeds it`);
    for (let r = 0; r < tokens.length; r++) {
      const id = tokens[r]!;
      if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) throw new RangeError(`token id ${id} at position ${state.length + r} is outside the vocabulary [0, ${c.vocabSize})`);
    }
  };

  /** Downloads logits [count, vocab] as one array per row. */
  const logitRows = (count: number): Float32Array[] => {
    const all = ctx.copyToHost(new Float32Array(count * c.vocabSize), logits);
    return Array.from({ length: count }, (_, r) => all.subarray(r * c.vocabSize, (r + 1) * c.vocabSize));
  };

  const checkFeeds = (feeds: readonly Feed[], what: string): void => {
    if (new Set(feeds.map((f) => f.state)).size !== feeds.length) throw new RangeError(`${what}: a sequence appears twice in one step`);
    for (const f of feeds) checkFeed(f, what);
  };
  const positionsOf = (feeds: readonly Feed[]): number => Math.max(...feeds.map((f) => f.state.positions));
  /** A decode step of checked feeds of one token each (at most T): one row each, one graph. */
  const decodeFeeds = (feeds: readonly Feed[], pickBy: PickBy): void => {
    const host = new Int32Array(4 * feeds.length);
    feeds.forEach(({ state, tokens }, r) => host.set([tokens[0]!, state.length, state.slot, 0], 4 * r));
    ctx.copyToDevice(rows, host);
    decodeStep(feeds.length, positionsOf(feeds), pickBy);
    for (const f of feeds) f.state.length += 1;
  };

  /** How a call's results leave the device: every fed sequence's last logits, or only the tokens picked from them. */
  type Results = { readonly kind: 'logits'; readonly out: Float32Array[] } | { readonly kind: 'tokens'; readonly out: Int32Array; readonly picks?: readonly TokenPick[] };

  /**
   * Runs the feeds (each its sequence's next tokens; sequences distinct) and leaves the result of each one's last token
   * in `results`: its logits, or the token its pick picks from them (argmax_rows where every pick is greedy, else
   * sample_rows). One token each (a decode step) runs as one graph; otherwise the rows of all feeds are packed into
   * passes of at most T rows (a batched prefill), the lm_head reading only each sequence's last row.
   */
  const run = (feeds: readonly Feed[], what: string, results: Results): void => {
    checkFeeds(feeds, what);
    const picks = results.kind === 'tokens' ? results.picks : undefined;
    if (picks !== undefined && picks.length !== feeds.length) throw new RangeError(`${what}: ${picks.length} picks for ${feeds.length} sequences`);
    const sampled = picks !== undefined && picks.some((p) => p.temperature > 0);
    const pickTable = sampled ? pickRows(picks) : undefined; // checked before anything runs
    const pickBy: PickBy = results.kind === 'logits' ? 'none' : sampled ? 'sample' : 'argmax';
    if (pickBy === 'sample') sampleScratch ??= alloc(pickRowsMax * sampleScratchBytes(c.vocabSize));
    /** the picks of the sequences whose last rows are the pass's picked rows, uploaded before it runs. */
    const uploadPicks = (owners: readonly number[]): void => {
      if (pickTable === undefined) return;
      const rowsOfPass = new Float64Array(PICK_FIELDS * owners.length);
      owners.forEach((f, i) => rowsOfPass.set(pickTable.subarray(PICK_FIELDS * f, PICK_FIELDS * (f + 1)), PICK_FIELDS * i));
      ctx.copyToDevice(tokenPicks, rowsOfPass);
    };
    /** the pass's results, rows 0 .. owners.length − 1 of the logits or the picked tokens, to their feeds. */
    const collect = (owners: readonly number[]): void => {
      if (results.kind === 'logits') logitRows(owners.length).forEach((l, i) => (results.out[owners[i]!] = l));
      else ctx.copyToHost(new Int32Array(owners.length), nextTokens).forEach((t, i) => (results.out[owners[i]!] = t));
    };
    if (feeds.length <= T && feeds.every((f) => f.tokens.length === 1)) {
      const all = feeds.map((_, f) => f);
      uploadPicks(all);
      decodeFeeds(feeds, pickBy);
      collect(all);
      return;
    }
    const positions = positionsOf(feeds);
    const host = new Int32Array(4 * Math.min(T, feeds.reduce((s, f) => s + f.tokens.length, 0)));
    let m = 0;
    const picked: number[] = [];
    const owners: number[] = [];
    const pass = (): void => {
      ctx.copyToDevice(rows, host.subarray(0, 4 * m));
      if (picked.length > 0) {
        ctx.copyToDevice(lastRows, Int32Array.from(picked));
        uploadPicks(owners);
      }
      forwardRows(m, positions, picked.length, pickBy, false);
      if (picked.length > 0) collect(owners);
      m = 0;
      picked.length = 0;
      owners.length = 0;
    };
    feeds.forEach(({ state, tokens }, f) => {
      for (let r = 0; r < tokens.length; r++) {
        host.set([tokens[r]!, state.length + r, state.slot, 0], 4 * m);
        if (r === tokens.length - 1) {
          picked.push(m);
          owners.push(f);
        }
        m += 1;
        if (m === T) pass();
      }
    });
    if (m > 0) pass();
    for (const f of feeds) f.state.length += f.tokens.length;
  };
  /** run's logits of each feed's last token. */
  const runLogits = (feeds: readonly Feed[], what: string): Float32Array[] => {
    const out: Float32Array[] = new Array(feeds.length);
    run(feeds, what, { kind: 'logits', out });
    return out;
  };

  const stateOf = (s: Sequence, what: string): SlotState => {
    const state = states.get(s);
    if (!state) throw new Error(`${what}: a sequence this engine did not open, or one already released`);
    return state;
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
    ctx.copyToDevice(kvTable.view(slot * L * 16, L * 16), addressTable(caches));
    const state: SlotState = { slot, capacity, positions: positionBound(capacity), length: 0, released: false };
    const sequence: Sequence = {
      get length() {
        return state.length;
      },
      capacity,
      feed: (tokens) => runLogits([{ state, tokens }], 'feed')[0]!,
      release() {
        if (state.released) return;
        state.released = true;
        states.delete(sequence);
        ctx.synchronize();
        for (const b of caches) b.free();
        slots[slot] = null;
      },
    };
    states.set(sequence, state);
    return sequence;
  };

  /** The feeds of a call that feeds tokens[i] to sequences[i]. */
  const feedsOf = (sequences: readonly Sequence[], tokens: readonly ArrayLike<number>[], what: string): Feed[] => {
    if (sequences.length !== tokens.length) throw new RangeError(`${what}: ${tokens.length} token lists for ${sequences.length} sequences`);
    return sequences.map((s, i) => ({ state: stateOf(s, what), tokens: tokens[i]! }));
  };

  return {
    config: c,
    ctx,
    open,
    decodeBatch(sequences, tokens) {
      if (sequences.length !== tokens.length) throw new RangeError(`decodeBatch: ${tokens.length} tokens for ${sequences.length} sequences`);
      return runLogits(feedsOf(sequences, tokens.map((t) => [t]), 'decodeBatch'), 'decodeBatch');
    },
    feedBatch: (sequences, tokens) => runLogits(feedsOf(sequences, tokens, 'feedBatch'), 'feedBatch'),
    feedPicked(sequences, tokens, picks) {
      const out = new Int32Array(sequences.length);
      run(feedsOf(sequences, tokens, 'feedPicked'), 'feedPicked', { kind: 'tokens', out, ...(picks ? { picks } : {}) });
      return out;
    },
    describe: () => `cuda engine (${ctx.info.name}): ${describeEngineWeights(w)}; fp16 KV cache; ${runtime ? 'decode steps as CUDA graphs' : 'no graphs'}; folds: ${foldsText}`,
    dispose: () => {
      ctx.synchronize();
      if (runtime) for (const exec of graphs.values()) if (exec !== null) runtime.destroy(exec);
      graphs.clear();
      for (const s of slots) for (const b of s ?? []) b.free();
      slots.fill(null);
      for (const b of owned.splice(0)) b.free();
      moeRunner?.free();
      freeEngineWeights(w);
      blas.destroy();
      if (ownsContext) ctx.release();
    },
  };
}
