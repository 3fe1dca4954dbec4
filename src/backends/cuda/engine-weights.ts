/**
 * A model's weights made resident once for the decode engine (decode-engine.ts): every linear in
 * its kernel's layout (resident-linear.ts), a mixture of experts' router and experts with the
 * grouped launches' tables (engine-moe.ts), q/k/v and gate/up stacked into one layer each where
 * their formats allow (quant/concat.ts: one GEMM instead of three or two; gate/up's rows interleaved in
 * blocks of 8 where their size allows, for the SwiGLU epilogue), biases and norms on the
 * device, the embedding table on the device (float32), the lm_head in fp16 by default. A linear no
 * CUDA kernel takes is an error here: the engine runs every layer on the GPU (the exact CUDA
 * backend is the one that falls back to the CPU).
 */
import { dequantize } from '../../quant/quantize-linear.js';
import { InputError } from '../../errors.js';
import type { ModelConfig } from '../../model/config.js';
import type { ModelWeights } from '../../model/weights.js';
import { stackLinears } from '../../quant/concat.js';
import type { LinearWeight } from '../../quant/types.js';
import type { DeviceBuffer } from './buffer.js';
import type { CudaContext } from './context.js';
import { freeResident, makeResident, type FloatPrecision, type ResidentLinear } from './resident-linear.js';
import type { EngineLinear, LinearGroup } from './engine-linear.js';
import { freeExpertTables, uploadEngineMoe, type EngineMoe, type ExpertTables, type LinearUploader } from './engine-moe.js';

interface EngineAttentionPart {
  readonly inputNorm: DeviceBuffer;
  readonly postAttentionNorm: DeviceBuffer;
  readonly qkv: LinearGroup;
  readonly o: EngineLinear;
}

/** A decoder layer: attention, then a dense MLP (gate/up, down) or a mixture of experts (engine-moe.ts). */
export type EngineLayer = EngineAttentionPart & (
  | { readonly gateUp: LinearGroup; readonly down: EngineLinear; readonly moe?: undefined }
  | { readonly moe: EngineMoe }
);

/** Every GEMM of a layer (the experts' included; a mixture's router is not one: moe_router, engine-moe.ts). */
export function layerLinears(l: EngineLayer): EngineLinear[] {
  const mlp = l.moe === undefined ? [...l.gateUp.linears, l.down] : l.moe.experts.flatMap((e) => [e.gateUp, e.down]);
  return [...l.qkv.linears, l.o, ...mlp];
}

export interface EngineWeights {
  readonly embedding: DeviceBuffer;
  readonly layers: readonly EngineLayer[];
  readonly finalNorm: DeviceBuffer;
  readonly lmHead: EngineLinear;
  readonly invFreq: DeviceBuffer;
  /** every buffer and resident layer above, for freeEngineWeights. */
  readonly owned: { buffers: DeviceBuffer[]; residents: ResidentLinear[]; experts: ExpertTables[] };
}

/** Uploads the model for the engine; on a failure what was uploaded is freed again. */
export function uploadEngineWeights(ctx: CudaContext, config: ModelConfig, weights: ModelWeights, invFreq: Float32Array,
  floatPrecision: FloatPrecision): EngineWeights {
  const owned: EngineWeights['owned'] = { buffers: [], residents: [], experts: [] };
  const buffer = (a: Float32Array): DeviceBuffer => {
    const b = ctx.upload(a);
    owned.buffers.push(b);
    return b;
  };
  const linear = (w: LinearWeight, name: string, precision: FloatPrecision = floatPrecision): EngineLinear => {
    const resident = makeResident(ctx, w, precision);
    if (resident.kind === 'cpu') throw new InputError(`the CUDA engine runs every linear layer on the GPU; ${name} cannot run there: ${resident.reason}`);
    owned.residents.push(resident);
    return { resident, bias: w.bias ? buffer(w.bias.subarray(0, w.n)) : null, n: w.n, k: w.k };
  };
  /** ws as one stacked GEMM where their formats allow (rows interleaved in blocks of `interleave` where also their sizes do), else one GEMM each. */
  const group = (ws: readonly LinearWeight[], name: string, interleave = 0): LinearGroup => {
    const widths = ws.map((w) => w.n);
    if (interleave > 0) {
      const s = stackLinears(ws, { interleave });
      if (s.ok) return { stacked: true, linears: [linear(s.weight, name)], widths, interleave };
    }
    const s = stackLinears(ws);
    if (s.ok) return { stacked: true, linears: [linear(s.weight, name)], widths, interleave: 0 };
    return { stacked: false, linears: ws.map((w, i) => linear(w, `${name}[${i}]`)), widths, interleave: 0 };
  };
  const uploader: LinearUploader = { linear, group, track: (b) => (owned.buffers.push(b), b) };
  try {
    const layers = weights.layers.map((l, i): EngineLayer => {
      const attention = {
        inputNorm: buffer(l.inputNorm),
        postAttentionNorm: buffer(l.postAttentionNorm),
        qkv: group([l.q, l.k, l.v], `layer ${i} q/k/v`),
        o: linear(l.o, `layer ${i} o`),
      };
      // gate/up interleaved by 8 rows: a 16-row tile of the decode GEMM holds gate j..j+7 and up j..j+7, so SwiGLU can close in its epilogue
      if (l.moe === undefined) return { ...attention, gateUp: group([l.gate, l.up], `layer ${i} gate/up`, 8), down: linear(l.down, `layer ${i} down`) };
      const moe = uploadEngineMoe(ctx, l.moe, `layer ${i}`, uploader);
      owned.experts.push(moe.tables);
      return { ...attention, moe };
    });
    // the table in float32 on the device (an 8-bit table widened once here; the engine gathers rows)
    const e = weights.embedding;
    const embedding = buffer(e.kind === 'float' ? e.w.subarray(0, config.vocabSize * config.hiddenSize) : dequantize(e));
    ctx.landUploads(); // uploads went through the legacy stream
    return { embedding, layers, finalNorm: buffer(weights.finalNorm), lmHead: linear(weights.lmHead, 'lm_head'), invFreq: buffer(invFreq), owned };
  } catch (e) {
    freeEngineWeights({ owned } as EngineWeights);
    throw e;
  }
}

export function freeEngineWeights(w: EngineWeights): void {
  for (const t of w.owned.experts.splice(0)) freeExpertTables(t);
  for (const r of w.owned.residents.splice(0)) freeResident(r);
  for (const b of w.owned.buffers.splice(0)) b.free();
}

/** How the layers run, in a few words (the CLI's summary). */
export function describeEngineWeights(w: EngineWeights): string {
  const kinds = new Map<string, number>();
  const count = (l: EngineLinear) => kinds.set(l.resident.kind, (kinds.get(l.resident.kind) ?? 0) + 1);
  for (const layer of w.layers) layerLinears(layer).forEach(count);
  const groups = w.layers.flatMap((l) => (l.moe === undefined ? [l.qkv, l.gateUp] : [l.qkv]));
  const gemms = [...kinds].map(([k, n]) => `${n} ${k.toUpperCase()}`).join(', ');
  const moe = w.layers.find((l) => l.moe !== undefined)?.moe;
  const experts = moe ? `; ${w.layers.filter((l) => l.moe).length} mixture-of-experts layers of ${moe.experts.length} ${moe.tables.kind.toUpperCase()} experts (gate/up stacked, grouped launches in decode steps), routers F32` : '';
  return `GEMMs: ${gemms} (${groups.filter((g) => g.stacked).length} of ${groups.length} q/k/v and gate/up groups stacked)${experts}, lm_head ${w.lmHead.resident.kind.toUpperCase()}`;
}

export type { EngineLinear, LinearGroup };
