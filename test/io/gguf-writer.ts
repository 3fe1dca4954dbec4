/**
 * A short GGUF writer for the tests (version 3, little-endian, alignment 32): a Hugging Face llama
 * directory written as llama.cpp's converter writes it — tensor names blk.N.*, q/k rows permuted
 * for its rotary layout, 2-D weights in one chosen type (F32, F16, BF16, Q8_0 or Q4_0 by
 * llama.cpp's reference quantizers), norms in F32, the byte-level BPE tokenizer as
 * tokenizer.ggml.* metadata. Also returns what each quantized weight dequantizes to, so a test can
 * check the reader bit for bit.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { f32ToBf16, f32ToF16, f16ToF32 } from '../../src/io/dtype.js';
import { openWeights } from '../../src/io/weight-source.js';
import { interleavedRows } from './rotary-order.js';

export type GgufWeightType = 'F32' | 'F16' | 'BF16' | 'Q8_0' | 'Q4_0';
const TYPE_IDS: Record<GgufWeightType, number> = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8, BF16: 30 };

// metadata value types (gguf.h)
const U32 = 4, I32 = 5, F32V = 6, BOOL = 7, STR = 8, ARR = 9;
type Value = { t: typeof U32 | typeof I32 | typeof F32V | typeof BOOL; v: number | boolean } | { t: typeof STR; v: string } | { t: typeof ARR; of: typeof STR | typeof I32 | typeof F32V; v: (string | number)[] };

class Bytes {
  private parts: Buffer[] = [];
  length = 0;
  push(b: Buffer): void {
    this.parts.push(b);
    this.length += b.length;
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  i32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    this.push(b);
  }
  u64(v: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.push(b);
  }
  pad(alignment: number): void {
    const n = (alignment - (this.length % alignment)) % alignment;
    if (n) this.push(Buffer.alloc(n));
  }
  concat(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function writeValue(out: Bytes, value: Value): void {
  out.u32(value.t);
  if (value.t === STR) out.str(value.v);
  else if (value.t === ARR) {
    out.u32(value.of);
    out.u64(value.v.length);
    for (const x of value.v) {
      if (value.of === STR) out.str(x as string);
      else if (value.of === I32) out.i32(x as number);
      else {
        const b = Buffer.alloc(4);
        b.writeFloatLE(x as number);
        out.push(b);
      }
    }
  } else if (value.t === F32V) {
    const b = Buffer.alloc(4);
    b.writeFloatLE(value.v as number);
    out.push(b);
  } else if (value.t === BOOL) out.push(Buffer.from([value.v ? 1 : 0]));
  else if (value.t === I32) out.i32(value.v as number);
  else out.u32(value.v as number);
}

/** f16 bits of one value, and that value back as float32. */
function half(v: number): [number, number] {
  const bits = f32ToF16(new Float32Array([v]));
  const back = new Float32Array(1);
  f16ToF32(bits, back);
  return [bits[0]!, back[0]!];
}

/** llama.cpp's quantize_row_q8_0_ref / quantize_row_q4_0_ref: the bytes, and the values they dequantize to. */
function quantizeBlocks(type: 'Q8_0' | 'Q4_0', w: Float32Array): { bytes: Buffer; values: Float32Array } {
  const blocks = w.length / 32, size = type === 'Q8_0' ? 34 : 18;
  const bytes = Buffer.alloc(blocks * size), values = new Float32Array(w.length);
  for (let b = 0; b < blocks; b++) {
    const x = w.subarray(b * 32, b * 32 + 32);
    const at = b * size;
    if (type === 'Q8_0') {
      const amax = x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const d = amax / 127, id = d ? 1 / d : 0;
      const [bits, dh] = half(d);
      bytes.writeUInt16LE(bits, at);
      for (let j = 0; j < 32; j++) {
        const q = Math.round(x[j]! * id) | 0; // an int8 has no −0
        bytes.writeInt8(q, at + 2 + j);
        values[b * 32 + j] = dh * q;
      }
    } else {
      let max = 0;
      for (const v of x) if (Math.abs(v) > Math.abs(max)) max = v;
      const d = max / -8, id = d ? 1 / d : 0;
      const [bits, dh] = half(d);
      bytes.writeUInt16LE(bits, at);
      const q = (v: number) => Math.min(15, Math.trunc(Math.fround(Math.fround(v * id) + 8.5)));
      for (let j = 0; j < 16; j++) {
        const lo = q(x[j]!), hi = q(x[j + 16]!);
        bytes[at + 2 + j] = lo | (hi << 4);
        values[b * 32 + j] = dh * (lo - 8);
        values[b * 32 + j + 16] = dh * (hi - 8);
      }
    }
  }
  return { bytes, values };
}

const GGUF_NAMES: [RegExp, string][] = [
  [/^model\.embed_tokens\.weight$/, 'token_embd.weight'], [/^model\.norm\.weight$/, 'output_norm.weight'], [/^lm_head\.weight$/, 'output.weight'],
  [/^model\.layers\.(\d+)\.input_layernorm\.weight$/, 'blk.$1.attn_norm.weight'], [/^model\.layers\.(\d+)\.post_attention_layernorm\.weight$/, 'blk.$1.ffn_norm.weight'],
  [/^model\.layers\.(\d+)\.self_attn\.q_proj\.weight$/, 'blk.$1.attn_q.weight'], [/^model\.layers\.(\d+)\.self_attn\.k_proj\.weight$/, 'blk.$1.attn_k.weight'],
  [/^model\.layers\.(\d+)\.self_attn\.v_proj\.weight$/, 'blk.$1.attn_v.weight'], [/^model\.layers\.(\d+)\.self_attn\.o_proj\.weight$/, 'blk.$1.attn_output.weight'],
  [/^model\.layers\.(\d+)\.mlp\.gate_proj\.weight$/, 'blk.$1.ffn_gate.weight'], [/^model\.layers\.(\d+)\.mlp\.up_proj\.weight$/, 'blk.$1.ffn_up.weight'],
  [/^model\.layers\.(\d+)\.mlp\.down_proj\.weight$/, 'blk.$1.ffn_down.weight'],
];

export interface WrittenGguf {
  /** what each quantized (Q8_0/Q4_0) weight dequantizes to, by Hugging Face name (rows in HF order). */
  readonly dequantized: Map<string, Float32Array>;
}

/**
 * Writes `dir` (a Hugging Face llama directory with a byte-level BPE tokenizer.json) as a GGUF file;
 * `extra` adds metadata (e.g. to write an unsupported key) and `extraTensors` raw F32 tensors.
 */
export function writeGgufFrom(dir: string, file: string, type: GgufWeightType, options: { extra?: Record<string, Value>; extraTensors?: Record<string, Float32Array> } = {}): WrittenGguf {
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  const tok = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
  const tokConfig = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
  const vocab = Object.entries(tok.model.vocab as Record<string, number>).sort((a, b) => a[1] - b[1]).map(([t]) => t);
  const special = new Set((tok.added_tokens as { id: number; special: boolean }[]).filter((t) => t.special).map((t) => t.id));
  const merges = (tok.model.merges as (string | [string, string])[]).map((m) => (typeof m === 'string' ? m : m.join(' ')));
  const heads = config.num_attention_heads, kvHeads = config.num_key_value_heads ?? heads;
  const meta: Record<string, Value> = {
    'general.architecture': { t: STR, v: 'llama' }, 'general.alignment': { t: U32, v: 32 },
    'llama.block_count': { t: U32, v: config.num_hidden_layers }, 'llama.context_length': { t: U32, v: config.max_position_embeddings },
    'llama.embedding_length': { t: U32, v: config.hidden_size }, 'llama.feed_forward_length': { t: U32, v: config.intermediate_size },
    'llama.attention.head_count': { t: U32, v: heads }, 'llama.attention.head_count_kv': { t: U32, v: kvHeads },
    'llama.attention.layer_norm_rms_epsilon': { t: F32V, v: config.rms_norm_eps }, 'llama.rope.freq_base': { t: F32V, v: config.rope_parameters?.rope_theta ?? config.rope_theta ?? 10000 },
    'tokenizer.ggml.model': { t: STR, v: 'gpt2' }, 'tokenizer.ggml.pre': { t: STR, v: 'gpt-2' },
    'tokenizer.ggml.tokens': { t: ARR, of: STR, v: vocab }, 'tokenizer.ggml.token_type': { t: ARR, of: I32, v: vocab.map((_, i) => (special.has(i) ? 3 : 1)) },
    'tokenizer.ggml.merges': { t: ARR, of: STR, v: merges },
    'tokenizer.ggml.bos_token_id': { t: U32, v: tok.model.vocab[tokConfig.bos_token] }, 'tokenizer.ggml.eos_token_id': { t: U32, v: tok.model.vocab[tokConfig.eos_token] },
    'tokenizer.ggml.add_bos_token': { t: BOOL, v: tokConfig.add_bos_token === true },
    ...options.extra,
  };
  const weights = openWeights(dir);
  const dequantized = new Map<string, Float32Array>();
  const tensors: { name: string; ne: number[]; type: number; data: Buffer }[] = [];
  for (const name of weights.names()) {
    const rule = GGUF_NAMES.find(([re]) => re.test(name));
    if (!rule) throw new Error(`no GGUF name for ${name}`);
    const shape = weights.shapeOf(name);
    const hf = weights.float32(name);
    let w = hf;
    if (name.endsWith('q_proj.weight')) w = interleavedRows(w, heads, shape[1]!);
    if (name.endsWith('k_proj.weight')) w = interleavedRows(w, kvHeads, shape[1]!);
    const t: GgufWeightType = shape.length === 2 ? type : 'F32';
    let data: Buffer;
    if (t === 'F32') data = Buffer.from(w.buffer, w.byteOffset, w.byteLength);
    else if (t === 'F16' || t === 'BF16') {
      const h = t === 'F16' ? f32ToF16(w) : f32ToBf16(w);
      data = Buffer.from(h.buffer, h.byteOffset, h.byteLength);
    } else {
      data = quantizeBlocks(t, w).bytes;
      // blocks of 32 lie within rows, so quantizing commutes with the row order: the HF-order weight gives the expected values
      dequantized.set(name, quantizeBlocks(t, hf).values);
    }
    tensors.push({ name: name.replace(rule[0], rule[1]), ne: [...shape].reverse(), type: TYPE_IDS[t], data });
  }
  weights.close();
  for (const [name, w] of Object.entries(options.extraTensors ?? {})) tensors.push({ name, ne: [w.length], type: 0, data: Buffer.from(w.buffer, w.byteOffset, w.byteLength) });

  const out = new Bytes();
  out.push(Buffer.from('GGUF', 'latin1'));
  out.u32(3);
  out.u64(tensors.length);
  out.u64(Object.keys(meta).length);
  for (const [key, value] of Object.entries(meta)) {
    out.str(key);
    writeValue(out, value);
  }
  let offset = 0;
  const offsets = tensors.map((t) => {
    const at = offset;
    offset += Math.ceil(t.data.length / 32) * 32;
    return at;
  });
  tensors.forEach((t, i) => {
    out.str(t.name);
    out.u32(t.ne.length);
    for (const n of t.ne) out.u64(n);
    out.u32(t.type);
    out.u64(offsets[i]!);
  });
  out.pad(32);
  for (const t of tensors) {
    out.push(t.data);
    out.pad(32);
  }
  fs.writeFileSync(file, out.concat());
  return { dequantized };
}

export const GGUF_VALUE = { U32, I32, F32: F32V, BOOL, STR, ARR } as const;
