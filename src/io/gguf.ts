/**
 * GGUF files (llama.cpp's format) as models: a llama-architecture GGUF is converted once into a
 * Hugging Face model directory (config.json, tokenizer.json, tokenizer_config.json,
 * generation_config.json, model.safetensors) in intscale's cache, which every command then reads
 * like any other. The header and metadata are parsed by @huggingface/gguf; the tensor data is read
 * here, tensor by tensor (one in memory at a time):
 *
 *   F32, F16, BF16   copied as they are (F16 / BF16 stay 16-bit)
 *   Q8_0             blocks of 32: fp16 d, 32 int8 q;                  w = d·q      → float32
 *   Q4_0             blocks of 32: fp16 d, 16 bytes; q_j = low nibble of byte j − 8 for j < 16,
 *                    high nibble of byte j − 16, minus 8, for j ≥ 16;   w = d·q      → float32
 *
 * A quantized GGUF re-quantized by intscale carries both roundings; the conversion says so.
 * GGUF stores a weight [out, in] with ne = [in, out] (rows contiguous, as safetensors), and
 * llama.cpp's converter permutes the rows of q and k within each head, (2, D/2) → (D/2, 2), for
 * its rotary layout; that is undone here (HF row h·D + s·D/2 + j = GGUF row h·D + 2j + s).
 * Tokenizers: `gpt2` (byte-level BPE: tokens and merges) with the split regex its `pre` names;
 * `llama` (SentencePiece: tokens and scores) as the BPE with byte fallback transformers makes of it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gguf } from '@huggingface/gguf';
import { InputError } from '../errors.js';
import { f16ToF32, type Dtype } from './dtype.js';
import { convertOnce, convertTensors, writeModelFiles, type ConversionOptions } from './converted-cache.js';
import { halfSplitRows } from './rotary-rows.js';
import { addedToken, sentencePieceParts } from './sentencepiece.js';

/** GGML tensor types this reader takes (ggml.h numbering). */
const GGML = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8, BF16: 30 } as const;
const TYPE_NAMES: Record<number, string> = { 0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 6: 'Q5_0', 7: 'Q5_1', 8: 'Q8_0', 10: 'Q2_K', 11: 'Q3_K', 12: 'Q4_K', 13: 'Q5_K', 14: 'Q6_K', 30: 'BF16' };
const typeName = (t: number): string => TYPE_NAMES[t] ?? `type ${t}`;

type Metadata = Record<string, unknown>;

/** The split regex of a byte-level BPE tokenizer by the `tokenizer.ggml.pre` name llama.cpp writes (null: GPT-2's, ByteLevel's own). */
const PRE_SPLITS: Record<string, string | null> = {
  'default': null,
  'gpt-2': null,
  'llama-bpe': "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  'qwen2': "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};

/** GGUF tensor names → Hugging Face LLaMA names (layer index as N). */
const LAYER_TENSORS: Record<string, string> = {
  'attn_norm.weight': 'input_layernorm.weight',
  'ffn_norm.weight': 'post_attention_layernorm.weight',
  'attn_q.weight': 'self_attn.q_proj.weight',
  'attn_k.weight': 'self_attn.k_proj.weight',
  'attn_v.weight': 'self_attn.v_proj.weight',
  'attn_output.weight': 'self_attn.o_proj.weight',
  'ffn_gate.weight': 'mlp.gate_proj.weight',
  'ffn_up.weight': 'mlp.up_proj.weight',
  'ffn_down.weight': 'mlp.down_proj.weight',
};
const GLOBAL_TENSORS: Record<string, string> = {
  'token_embd.weight': 'model.embed_tokens.weight',
  'output_norm.weight': 'model.norm.weight',
  'output.weight': 'lm_head.weight',
};

function hfName(name: string, file: string): string {
  const global = GLOBAL_TENSORS[name];
  if (global) return global;
  const m = /^blk\.(\d+)\.(.+)$/.exec(name);
  const layer = m ? LAYER_TENSORS[m[2]!] : undefined;
  if (!m || !layer) {
    const why = name === 'rope_freqs.weight' ? ' (Llama 3.1 rope scaling factors, not supported yet)' : '';
    throw new InputError(`${file}: tensor "${name}" has no place in a llama model${why}`, { file, tensor: name });
  }
  return `model.layers.${m[1]}.${layer}`;
}

const num = (v: unknown): number | undefined => (typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : undefined);

/** A metadata number, or an InputError naming the missing key. */
function need(meta: Metadata, key: string, file: string): number {
  const v = num(meta[key]);
  if (v === undefined) throw new InputError(`${file}: metadata "${key}" is missing`, { file });
  return v;
}

/** config.json of a LlamaForCausalLM from the GGUF metadata. */
function llamaConfig(meta: Metadata, vocab: number, tied: boolean, file: string): Record<string, unknown> {
  const heads = need(meta, 'llama.attention.head_count', file);
  const hidden = need(meta, 'llama.embedding_length', file);
  const scaling = meta['llama.rope.scaling.type'];
  if (scaling !== undefined && scaling !== 'none' && scaling !== 'linear') throw new InputError(`${file}: rope scaling "${String(scaling)}" is not supported (none and linear are)`, { file });
  const headDim = num(meta['llama.attention.key_length']) ?? hidden / heads;
  return {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_act: 'silu',
    vocab_size: vocab, hidden_size: hidden, intermediate_size: need(meta, 'llama.feed_forward_length', file),
    num_hidden_layers: need(meta, 'llama.block_count', file), num_attention_heads: heads,
    num_key_value_heads: num(meta['llama.attention.head_count_kv']) ?? heads, head_dim: headDim,
    rms_norm_eps: need(meta, 'llama.attention.layer_norm_rms_epsilon', file), rope_theta: num(meta['llama.rope.freq_base']) ?? 10000,
    max_position_embeddings: need(meta, 'llama.context_length', file), tie_word_embeddings: tied,
    ...(scaling === 'linear' ? { rope_scaling: { type: 'linear', factor: need(meta, 'llama.rope.scaling.factor', file) } } : {}),
    bos_token_id: num(meta['tokenizer.ggml.bos_token_id']) ?? null, eos_token_id: num(meta['tokenizer.ggml.eos_token_id']) ?? null,
    torch_dtype: 'float32',
  };
}

/** GGUF token types (llama.cpp's llama_token_type). */
const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, byte: 6 } as const;

/** tokenizer.json and tokenizer_config.json from the GGUF tokenizer metadata. */
function tokenizerFiles(meta: Metadata, file: string): { tokenizer: unknown; config: Record<string, unknown> } {
  const model = meta['tokenizer.ggml.model'];
  const tokens = meta['tokenizer.ggml.tokens'] as string[] | undefined;
  if (!Array.isArray(tokens)) throw new InputError(`${file}: no tokenizer (tokenizer.ggml.tokens) in the metadata`, { file });
  if (model !== 'gpt2' && model !== 'llama') {
    throw new InputError(`${file}: tokenizer "${String(model)}" is not supported (byte-level BPE "gpt2" and SentencePiece "llama" are)`, { file });
  }
  const types = (meta['tokenizer.ggml.token_type'] as number[] | undefined) ?? [];
  // control and user-defined tokens match whole, before the model splits the text
  const added = tokens.flatMap((content, id) => (types[id] === TOKEN_TYPE.control || types[id] === TOKEN_TYPE.userDefined
    ? [addedToken(id, content, types[id] === TOKEN_TYPE.control)] : []));
  let parts: Record<string, unknown>;
  if (model === 'gpt2') {
    const pre = String(meta['tokenizer.ggml.pre'] ?? 'default');
    if (!(pre in PRE_SPLITS)) throw new InputError(`${file}: pre-tokenizer "${pre}" is not known (known: ${Object.keys(PRE_SPLITS).join(', ')})`, { file });
    const split = PRE_SPLITS[pre]!;
    const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: split === null };
    parts = {
      normalizer: null,
      pre_tokenizer: split === null ? byteLevel : { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: split }, behavior: 'Isolated', invert: false }, byteLevel] },
      post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: {
        type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false,
        byte_fallback: false, ignore_merges: false, vocab: Object.fromEntries(tokens.map((t, i) => [t, i])), merges: (meta['tokenizer.ggml.merges'] as string[] | undefined) ?? [],
      },
    };
  } else {
    const scores = (meta['tokenizer.ggml.scores'] as number[] | undefined) ?? [];
    parts = sentencePieceParts(tokens, scores, tokens[num(meta['tokenizer.ggml.unknown_token_id']) ?? types.indexOf(TOKEN_TYPE.unknown)] ?? null);
  }
  const tokenizer = { version: '1.0', truncation: null, padding: null, added_tokens: added, ...parts };
  const tokenOf = (key: string): string | null => {
    const id = num(meta[key]);
    return id === undefined ? null : tokens[id] ?? null;
  };
  // llama.cpp adds BOS by default for SentencePiece vocabularies, not for byte-level BPE ones
  const addBos = typeof meta['tokenizer.ggml.add_bos_token'] === 'boolean' ? meta['tokenizer.ggml.add_bos_token'] : model === 'llama';
  const config: Record<string, unknown> = {
    bos_token: tokenOf('tokenizer.ggml.bos_token_id'), eos_token: tokenOf('tokenizer.ggml.eos_token_id'),
    add_bos_token: addBos, add_eos_token: meta['tokenizer.ggml.add_eos_token'] === true,
    ...(typeof meta['tokenizer.chat_template'] === 'string' ? { chat_template: meta['tokenizer.chat_template'] } : {}),
  };
  return { tokenizer, config };
}

/** Float32 values of `count` elements of a Q8_0 or Q4_0 tensor. */
export function dequantizeBlocks(type: number, bytes: Uint8Array, count: number): Float32Array {
  const out = new Float32Array(count);
  const d16 = new Uint16Array(1), d32 = new Float32Array(1);
  const scale = (at: number): number => {
    d16[0] = bytes[at]! | (bytes[at + 1]! << 8);
    f16ToF32(d16, d32);
    return d32[0]!;
  };
  const blocks = count / 32;
  if (type === GGML.Q8_0) {
    for (let b = 0; b < blocks; b++) {
      const at = b * 34, d = scale(at);
      for (let j = 0; j < 32; j++) out[b * 32 + j] = d * ((bytes[at + 2 + j]! << 24) >> 24);
    }
  } else {
    for (let b = 0; b < blocks; b++) {
      const at = b * 18, d = scale(at);
      for (let j = 0; j < 16; j++) {
        const v = bytes[at + 2 + j]!;
        out[b * 32 + j] = d * ((v & 15) - 8);
        out[b * 32 + j + 16] = d * ((v >> 4) - 8);
      }
    }
  }
  return out;
}

/** Bytes of `count` elements of a tensor of this type. */
function tensorBytes(type: number, count: number, name: string, file: string): number {
  if (type === GGML.F32) return 4 * count;
  if (type === GGML.F16 || type === GGML.BF16) return 2 * count;
  if (type === GGML.Q8_0 || type === GGML.Q4_0) {
    if (count % 32 !== 0) throw new InputError(`${file}: ${name} has ${count} values, not whole blocks of 32`, { file, tensor: name });
    return (count / 32) * (type === GGML.Q8_0 ? 34 : 18);
  }
  throw new InputError(`${file}: tensor ${name} is ${typeName(type)}; intscale reads F32, F16, BF16, Q8_0 and Q4_0 GGUF tensors`, { file, tensor: name });
}

export type GgufOptions = ConversionOptions;

/**
 * The Hugging Face model directory of a GGUF file: converted on first use (into a temporary
 * directory renamed when complete), reused while the file's size and modification time are the same.
 */
export async function ggufModelDir(file: string, options: GgufOptions = {}): Promise<string> {
  return convertOnce([file], 'gguf', (dir) => convertGguf(file, dir, options), options.cacheDir);
}

/** Writes the Hugging Face directory of a GGUF file into `out`. */
async function convertGguf(file: string, out: string, options: GgufOptions): Promise<void> {
  const stat = fs.statSync(file);
  let parsed: Awaited<ReturnType<typeof gguf>>;
  try {
    parsed = await gguf(path.resolve(file), { allowLocalFile: true });
  } catch (e) {
    throw new InputError(`${file}: not a readable GGUF file (${(e as Error).message})`, { file });
  }
  const meta = parsed.metadata as unknown as Metadata;
  const arch = meta['general.architecture'];
  if (arch !== 'llama') throw new InputError(`${file}: architecture "${String(arch)}" is not supported from GGUF (llama is; Mistral GGUFs are llama too)`, { file });
  const alignment = num(meta['general.alignment']) ?? 32;
  const dataStart = Number(parsed.tensorDataOffset);
  const heads = need(meta, 'llama.attention.head_count', file);
  const kvHeads = num(meta['llama.attention.head_count_kv']) ?? heads;
  const infos = parsed.tensorInfos;
  const { tokenizer, config: tokenizerConfig } = tokenizerFiles(meta, file);
  const vocab = (meta['tokenizer.ggml.tokens'] as string[]).length;
  const config = llamaConfig(meta, vocab, !infos.some((t) => t.name === 'output.weight'), file);
  const types = new Set(infos.map((t) => typeName(Number(t.dtype))));
  const dequantized = [...types].filter((t) => t === 'Q8_0' || t === 'Q4_0');
  if (dequantized.length > 0) {
    options.onNote?.(`${path.basename(file)} holds ${dequantized.join(' and ')} tensors: they are dequantized to float32; quantizing them again adds intscale's rounding to llama.cpp's`);
  }

  convertTensors(file, out, infos.length, (fd, write) => {
    for (const info of infos) {
      const name = hfName(info.name, file);
      const type = Number(info.dtype);
      const shape = info.shape.map(Number).reverse(); // ne[0] (the row length) last
      const count = shape.reduce((a, b) => a * b, 1);
      const size = tensorBytes(type, count, info.name, file);
      const at = dataStart + Number(info.offset);
      if (Number(info.offset) % alignment !== 0) throw new InputError(`${file}: tensor ${info.name} is not aligned to ${alignment}`, { file, tensor: info.name });
      if (at + size > stat.size) throw new InputError(`${file}: tensor ${info.name} runs past the end of the file (truncated?)`, { file, tensor: info.name });
      const bytes = new Uint8Array(size);
      fs.readSync(fd, bytes, 0, size, at);
      let data: Float32Array | Uint16Array;
      let dtype: Dtype;
      if (type === GGML.F32) [data, dtype] = [new Float32Array(bytes.buffer, 0, count), 'F32'];
      else if (type === GGML.F16 || type === GGML.BF16) [data, dtype] = [new Uint16Array(bytes.buffer, 0, count), type === GGML.F16 ? 'F16' : 'BF16'];
      else [data, dtype] = [dequantizeBlocks(type, bytes, count), 'F32'];
      if (name.endsWith('q_proj.weight')) data = halfSplitRows(data, heads, shape[shape.length - 1]!);
      if (name.endsWith('k_proj.weight')) data = halfSplitRows(data, kvHeads, shape[shape.length - 1]!);
      write({ name, dtype, shape, data });
    }
  }, options.onProgress);
  writeModelFiles(out, config, tokenizer, tokenizerConfig);
  options.onNote?.(`converted ${file} (${[...types].join(', ')}) for intscale (once; kept in ${path.dirname(out)})`);
}
