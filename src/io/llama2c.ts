/**
 * llama2.c checkpoints (Karpathy's run.c format, "version 0") with their tokenizer.bin, converted once
 * into a Hugging Face directory in intscale's cache (converted-cache.ts).
 *
 * model.bin: 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a
 * negative vocab_size means the classifier is not shared with the embedding), then float32 arrays:
 *   token_embedding [vocab, dim]      rms_att [L, dim]        wq [L, dim, dim]
 *   wk [L, kv_dim, dim]               wv [L, kv_dim, dim]     wo [L, dim, dim]
 *   rms_ffn [L, dim]                  w1 [L, hidden, dim]     w2 [L, dim, hidden]     w3 [L, hidden, dim]
 *   rms_final [dim]                   freq_cis_real, freq_cis_imag [seq_len, head_size / 2] (unused)
 *   wcls [vocab, dim] (only when not shared)
 * Weights are [out, in] row-major as in Hugging Face checkpoints (w1 = gate, w3 = up, w2 = down);
 * q/k rows are in the interleaved rotary order (rotary-rows.ts). run.c fixes rms eps 1e-5 and rope
 * θ = 10000.
 * tokenizer.bin: int32 max_token_length, then per token float32 score, int32 length, UTF-8 bytes;
 * pieces have " " where SentencePiece has "▁", BOS and EOS are spelled "\n<s>\n", "\n</s>\n".
 * run.c prepends BOS and encodes with a leading space: the SentencePiece tokenizer.json (prepend "▁").
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors.js';
import { convertOnce, convertTensors, writeModelFiles, type ConversionOptions } from './converted-cache.js';
import { halfSplitRows } from './rotary-rows.js';
import { addedToken, sentencePieceParts } from './sentencepiece.js';

/** The first int32 of the newer llama2.c exports ("ak42"), which carry a version after it. */
const VERSIONED_MAGIC = 0x616b3432;

export interface Llama2cHeader {
  readonly dim: number;
  readonly hiddenDim: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly vocab: number;
  readonly seqLen: number;
  readonly shared: boolean;
}

export function readLlama2cHeader(file: string): Llama2cHeader {
  const fd = fs.openSync(file, 'r');
  const head = Buffer.alloc(28);
  try {
    if (fs.readSync(fd, head, 0, 28, 0) < 28) throw new InputError(`${file}: too short for a llama2.c checkpoint header (7 int32)`, { file });
  } finally {
    fs.closeSync(fd);
  }
  if (head.readUInt32LE(0) === VERSIONED_MAGIC) throw new InputError(`${file}: a versioned llama2.c export (magic "ak42", version ${head.readInt32LE(4)}); intscale reads the legacy version-0 format (export.py --version 0)`, { file });
  if (head.subarray(0, 2).toString('latin1') === 'PK') throw new InputError(`${file}: a zip file (a PyTorch checkpoint?), not a llama2.c checkpoint`, { file });
  const [dim, hiddenDim, layers, heads, kvHeads, vocab, seqLen] = Array.from({ length: 7 }, (_, i) => head.readInt32LE(4 * i)) as [number, number, number, number, number, number, number];
  const h = { dim, hiddenDim, layers, heads, kvHeads, vocab: Math.abs(vocab), seqLen, shared: vocab > 0 };
  const positive = [dim, hiddenDim, layers, heads, kvHeads, h.vocab, seqLen].every((v) => v > 0 && v < 1 << 24);
  if (!positive || dim % heads !== 0 || heads % kvHeads !== 0 || (dim / heads) % 2 !== 0) {
    throw new InputError(`${file}: not a llama2.c checkpoint (header dim ${dim}, hidden ${hiddenDim}, layers ${layers}, heads ${heads}/${kvHeads}, vocab ${vocab}, seq_len ${seqLen})`, { file });
  }
  return h;
}

/** The float32 arrays of a checkpoint in file order: [name (HF), shape] per tensor, or null for the skipped rotary tables. */
function layout(h: Llama2cHeader): [string | null, number[]][] {
  const { dim, hiddenDim, layers: L, heads, kvHeads, vocab, seqLen } = h;
  const kvDim = (dim / heads) * kvHeads, headSize = dim / heads;
  const perLayer = (name: string, shape: number[]): [string, number[]][] => Array.from({ length: L }, (_, i) => [`model.layers.${i}.${name}`, shape]);
  return [
    ['model.embed_tokens.weight', [vocab, dim]],
    ...perLayer('input_layernorm.weight', [dim]),
    ...perLayer('self_attn.q_proj.weight', [dim, dim]),
    ...perLayer('self_attn.k_proj.weight', [kvDim, dim]),
    ...perLayer('self_attn.v_proj.weight', [kvDim, dim]),
    ...perLayer('self_attn.o_proj.weight', [dim, dim]),
    ...perLayer('post_attention_layernorm.weight', [dim]),
    ...perLayer('mlp.gate_proj.weight', [hiddenDim, dim]),
    ...perLayer('mlp.down_proj.weight', [dim, hiddenDim]),
    ...perLayer('mlp.up_proj.weight', [hiddenDim, dim]),
    ['model.norm.weight', [dim]],
    [null, [seqLen, headSize / 2]],
    [null, [seqLen, headSize / 2]],
    ...(h.shared ? [] : [['lm_head.weight', [vocab, dim]] as [string, number[]]]),
  ];
}

/** The pieces and scores of a tokenizer.bin, in SentencePiece spelling. */
export function readLlama2cTokenizer(file: string, vocab: number): { tokens: string[]; scores: number[] } {
  const b = fs.readFileSync(file);
  const tokens: string[] = [], scores: number[] = [];
  let at = 4;
  for (let i = 0; i < vocab; i++) {
    if (at + 8 > b.length) throw new InputError(`${file}: ends after ${i} of the model's ${vocab} tokens (truncated, or the tokenizer of another model?)`, { file });
    scores.push(b.readFloatLE(at));
    const len = b.readInt32LE(at + 4);
    if (len < 0 || at + 8 + len > b.length) throw new InputError(`${file}: token ${i} has a bad length ${len}`, { file });
    const piece = b.subarray(at + 8, at + 8 + len).toString('utf8');
    tokens.push(piece === '\n<s>\n' ? '<s>' : piece === '\n</s>\n' ? '</s>' : piece.replaceAll(' ', '\u2581'));
    at += 8 + len;
  }
  return { tokens, scores };
}

export type Llama2cOptions = ConversionOptions;

/** The Hugging Face model directory of a llama2.c checkpoint and its tokenizer.bin (converted on first use). */
export async function llama2cModelDir(checkpoint: string, tokenizerFile: string, options: Llama2cOptions = {}): Promise<string> {
  return convertOnce([checkpoint, tokenizerFile], 'llama2c', (out) => convert(checkpoint, tokenizerFile, out, options), options.cacheDir);
}

function convert(file: string, tokenizerFile: string, out: string, options: Llama2cOptions): void {
  const h = readLlama2cHeader(file);
  const tensors = layout(h);
  const expected = 28 + 4 * tensors.reduce((s, [, shape]) => s + shape.reduce((a, b) => a * b, 1), 0);
  const size = fs.statSync(file).size;
  if (size !== expected) {
    throw new InputError(`${file}: ${size} bytes, the header (dim ${h.dim}, hidden ${h.hiddenDim}, ${h.layers} layers, vocab ${h.vocab}, ${h.shared ? 'shared' : 'own'} classifier) needs ${expected}${size < expected ? ' (truncated?)' : ''}`, { file });
  }
  const { tokens, scores } = readLlama2cTokenizer(tokenizerFile, h.vocab);
  convertTensors(file, out, tensors.length, (fd, write) => {
    let at = 28;
    for (const [name, shape] of tensors) {
      const count = shape.reduce((a, b) => a * b, 1);
      if (name !== null) {
        let data = new Float32Array(count);
        fs.readSync(fd, new Uint8Array(data.buffer), 0, 4 * count, at);
        if (name.endsWith('q_proj.weight')) data = halfSplitRows(data, h.heads, h.dim);
        if (name.endsWith('k_proj.weight')) data = halfSplitRows(data, h.kvHeads, h.dim);
        write({ name, dtype: 'F32', shape, data });
      }
      at += 4 * count;
    }
  }, options.onProgress);
  const config = {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_act: 'silu', vocab_size: h.vocab, hidden_size: h.dim,
    intermediate_size: h.hiddenDim, num_hidden_layers: h.layers, num_attention_heads: h.heads, num_key_value_heads: h.kvHeads,
    rms_norm_eps: 1e-5, rope_theta: 10000, max_position_embeddings: h.seqLen, tie_word_embeddings: h.shared,
    bos_token_id: 1, eos_token_id: 2, torch_dtype: 'float32',
  };
  const tokenizer = {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [1, 2].map((id) => addedToken(id, tokens[id]!, true)), // BOS, EOS
    ...sentencePieceParts(tokens, scores, tokens[0] ?? null),
  };
  writeModelFiles(out, config, tokenizer, { bos_token: tokens[1], eos_token: tokens[2], add_bos_token: true, add_eos_token: false });
  options.onNote?.(`converted the llama2.c checkpoint ${file} with ${tokenizerFile} for intscale (once; kept in ${path.dirname(out)})`);
}
