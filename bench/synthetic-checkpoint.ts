/**
 * A LLaMA-2-7B-shaped checkpoint of RANDOM f16 weights on disk (speed and memory only: quantize-7b.ts,
 * cuda-gptq.ts). Random values of magnitude 2^-8 … 2^-2; norms 1; untied lm_head; max position 4096.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeSafetensors, type TensorToWrite } from '../src/io/safetensors.js';
import { LLAMA2_7B_SHAPE } from './synthetic.js';

const { hidden: d, ffn: f, vocab } = LLAMA2_7B_SHAPE;

/** count random f16 values of magnitude 2^-8 … 2^-2 (random sign, exponent and mantissa bits). */
function randomF16(count: number, seed: number): Uint16Array {
  const out = new Uint16Array(count);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = ((s >>> 31) << 15) | ((7 + ((s >>> 24) % 6)) << 10) | (s & 0x3ff);
  }
  return out;
}

function tensorsOfLayer(l: number): TensorToWrite[] {
  const p = `model.layers.${l}.`;
  const t = (name: string, shape: number[], seed: number): TensorToWrite => ({ name: p + name, dtype: 'F16', shape, data: randomF16(shape.reduce((a, b) => a * b, 1), seed) });
  const ones = (name: string): TensorToWrite => ({ name: p + name, dtype: 'F16', shape: [d], data: new Uint16Array(d).fill(0x3c00) });
  const s = 100 * (l + 1);
  return [
    t('self_attn.q_proj.weight', [d, d], s + 1), t('self_attn.k_proj.weight', [d, d], s + 2), t('self_attn.v_proj.weight', [d, d], s + 3),
    t('self_attn.o_proj.weight', [d, d], s + 4), t('mlp.gate_proj.weight', [f, d], s + 5), t('mlp.up_proj.weight', [f, d], s + 6),
    t('mlp.down_proj.weight', [d, f], s + 7), ones('input_layernorm.weight'), ones('post_attention_layernorm.weight'),
  ];
}

/**
 * Writes a LLaMA-2-7B-shaped f16 checkpoint of RANDOM weights with `layers` decoder layers into `dir`: three
 * shards (layers split evenly; two when a middle one would be empty) and an index, as real checkpoints come, one shard in memory at a time.
 */
export function writeSynthetic7B(dir: string, layers: number, say: (line: string) => void = () => {}): void {
  fs.mkdirSync(dir, { recursive: true });
  const cut = (i: number) => Math.round((i * layers) / 3);
  // the first shard carries the embedding and the last the head, so only a middle one can be empty (layers < 3)
  const shards = [[cut(0), cut(1)], [cut(1), cut(2)], [cut(2), layers]].filter(([from, to], i) => i !== 1 || to > from);
  const weightMap: Record<string, string> = {};
  shards.forEach(([from, to], i) => {
    const name = `model-0000${i + 1}-of-0000${shards.length}.safetensors`;
    const tensors: TensorToWrite[] = [];
    if (i === 0) tensors.push({ name: 'model.embed_tokens.weight', dtype: 'F16', shape: [vocab, d], data: randomF16(vocab * d, 1) });
    for (let l = from; l < to; l++) tensors.push(...tensorsOfLayer(l));
    if (i === shards.length - 1) {
      tensors.push({ name: 'model.norm.weight', dtype: 'F16', shape: [d], data: new Uint16Array(d).fill(0x3c00) });
      tensors.push({ name: 'lm_head.weight', dtype: 'F16', shape: [vocab, d], data: randomF16(vocab * d, 2) });
    }
    writeSafetensors(path.join(dir, name), tensors, { format: 'pt' });
    for (const t of tensors) weightMap[t.name] = name;
    say(`  wrote ${name}`);
  });
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({
    architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: vocab, hidden_size: d, intermediate_size: f,
    num_hidden_layers: layers, num_attention_heads: 32, num_key_value_heads: 32, max_position_embeddings: 4096,
    rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: false, torch_dtype: 'float16', hidden_act: 'silu',
  }));
}

