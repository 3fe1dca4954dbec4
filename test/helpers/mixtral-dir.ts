/**
 * Mixtral checkpoints made from a dense fixture (test/fixtures/<dense>, made with transformers) in the
 * Hub's layout: the MLP of every layer becomes `experts` experts (block_sparse_moe.experts.E.w1/w3/w2,
 * for gate/up/down) and a random router (block_sparse_moe.gate). With `noise` 0 every expert is the
 * dense MLP, so the mixture equals it whatever the router picks (the k weights sum to 1): the model's
 * logits are then the dense fixture's transformers logits. With noise > 0 each expert is the dense
 * MLP plus independent normal noise of that relative size: a real mixture, for the quantizers.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openSafetensors, writeSafetensors, type TensorToWrite } from '../../src/io/safetensors.js';
import { tempDir, writeJson } from '../io/temp-dir.js';
import { fixturePath } from './paths.js';
import { makeRng } from './random.js';

export interface MixtralOptions {
  readonly experts: number;
  readonly topK: number;
  readonly seed: number;
  /** relative std of the noise added to each expert's copy of the dense MLP (0: identical experts). */
  readonly noise: number;
  /** std of the router's weights (larger: sharper routing). */
  readonly routerStd?: number;
  /** extra config.json fields. */
  readonly config?: Readonly<Record<string, unknown>>;
}

const EXPERT_NAMES = { gate_proj: 'w1', up_proj: 'w3', down_proj: 'w2' } as const;

/** Writes the mixtral directory (see the header) and returns its path; the dense model's tokenizer comes along. `from`: the dense model's directory (default: the fixture named `dense`). */
export function mixtralFromDense(dense: string, o: MixtralOptions, from = fixturePath(dense)): string {
  const dir = path.join(tempDir(), `${dense}-moe`);
  fs.mkdirSync(dir);
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'reference.safetensors']) {
    if (fs.existsSync(path.join(from, f))) fs.copyFileSync(path.join(from, f), path.join(dir, f));
  }
  const config = JSON.parse(fs.readFileSync(path.join(from, 'config.json'), 'utf8')) as Record<string, unknown>;
  const hidden = config['hidden_size'] as number;
  writeJson(path.join(dir, 'config.json'), {
    ...config, architectures: ['MixtralForCausalLM'], model_type: 'mixtral',
    num_local_experts: o.experts, num_experts_per_tok: o.topK, router_jitter_noise: 0, ...o.config,
  });
  const st = openSafetensors(path.join(from, 'model.safetensors'));
  const rng = makeRng(o.seed);
  const tensors: TensorToWrite[] = [];
  const f32 = (name: string, shape: number[], data: Float32Array): TensorToWrite => ({ name, dtype: 'F32', shape, data });
  try {
    for (const t of st.tensors.values()) {
      const m = /^(model\.layers\.\d+\.)mlp\.(gate_proj|up_proj|down_proj)\.weight$/.exec(t.name);
      const values = st.readFloat32(t.name);
      if (m === null) {
        tensors.push(f32(t.name, [...t.shape], values));
        continue;
      }
      let std = 0;
      for (const v of values) std += v * v;
      std = Math.sqrt(std / values.length) * o.noise;
      for (let e = 0; e < o.experts; e++) {
        const w = values.map((v) => v + std * rng.normal());
        tensors.push(f32(`${m[1]}block_sparse_moe.experts.${e}.${EXPERT_NAMES[m[2] as keyof typeof EXPERT_NAMES]}.weight`, [...t.shape], w));
      }
      if (m[2] === 'gate_proj') {
        const router = Float32Array.from({ length: o.experts * hidden }, () => (o.routerStd ?? 0.3) * rng.normal());
        tensors.push(f32(`${m[1]}block_sparse_moe.gate.weight`, [o.experts, hidden], router));
      }
    }
  } finally {
    st.close();
  }
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  return dir;
}
