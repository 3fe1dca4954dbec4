/**
 * llama2.c files for the tests: a Hugging Face llama directory exported as run.c's version-0
 * checkpoint (q/k rows in the interleaved rotary order, the rotary tables as run.c's export writes
 * them), and a tokenizer.bin from SentencePiece pieces and scores (" " for "▁", BOS/EOS spelled
 * "\n<s>\n", "\n</s>\n").
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openWeights } from '../../src/io/weight-source.js';
import { interleavedRows } from './rotary-order.js';

export function writeLlama2cCheckpoint(dir: string, file: string, options: { shared?: boolean } = {}): void {
  const c = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  const w = openWeights(dir);
  const L = c.num_hidden_layers, heads = c.num_attention_heads, kvHeads = c.num_key_value_heads ?? heads, dim = c.hidden_size;
  const headSize = dim / heads;
  const header = Buffer.alloc(28);
  [dim, c.intermediate_size, L, heads, kvHeads, options.shared ? c.vocab_size : -c.vocab_size, c.max_position_embeddings].forEach((v, i) => header.writeInt32LE(v, 4 * i));
  const parts: Float32Array[] = [];
  const layers = (name: string, f: (x: Float32Array) => Float32Array = (x) => x) => {
    for (let i = 0; i < L; i++) parts.push(f(w.float32(`model.layers.${i}.${name}`)));
  };
  parts.push(w.float32('model.embed_tokens.weight'));
  layers('input_layernorm.weight');
  layers('self_attn.q_proj.weight', (x) => interleavedRows(x, heads, dim));
  layers('self_attn.k_proj.weight', (x) => interleavedRows(x, kvHeads, dim));
  layers('self_attn.v_proj.weight');
  layers('self_attn.o_proj.weight');
  layers('post_attention_layernorm.weight');
  layers('mlp.gate_proj.weight');
  layers('mlp.down_proj.weight');
  layers('mlp.up_proj.weight');
  parts.push(w.float32('model.norm.weight'));
  const freqs = (f: (x: number) => number) => Float32Array.from({ length: c.max_position_embeddings * (headSize / 2) }, (_, i) => f((Math.floor(i / (headSize / 2))) / 10000 ** ((2 * (i % (headSize / 2))) / headSize)));
  parts.push(freqs(Math.cos), freqs(Math.sin));
  if (!options.shared) parts.push(w.float32('lm_head.weight'));
  w.close();
  fs.writeFileSync(file, Buffer.concat([header, ...parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength))]));
}

export function writeLlama2cTokenizer(file: string, pieces: readonly string[], scores: readonly number[]): void {
  const chunks: Buffer[] = [];
  const head = Buffer.alloc(4);
  head.writeInt32LE(Math.max(...pieces.map((p) => Buffer.byteLength(p))));
  chunks.push(head);
  pieces.forEach((p, i) => {
    const text = i === 1 ? '\n<s>\n' : i === 2 ? '\n</s>\n' : p.replaceAll('\u2581', ' ');
    const b = Buffer.from(text, 'utf8');
    const meta = Buffer.alloc(8);
    meta.writeFloatLE(scores[i]!, 0);
    meta.writeInt32LE(b.length, 4);
    chunks.push(meta, b);
  });
  fs.writeFileSync(file, Buffer.concat(chunks));
}
