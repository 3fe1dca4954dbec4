/** Reads reference.safetensors written beside each fixture by scripts/gpu/make_fixtures.py. */
import * as path from 'node:path';
import { openSafetensors } from '../../src/io/safetensors.js';

export interface Reference {
  /** the prompt, BOS first */
  readonly inputIds: number[];
  /** transformers' logits [inputIds.length, vocab] */
  readonly logits: Float32Array;
  /** transformers' greedy continuation of inputIds */
  readonly greedy: number[];
}

export function readReference(dir: string): Reference {
  const f = openSafetensors(path.join(dir, 'reference.safetensors'));
  try {
    const ints = (name: string) => Array.from(new Int32Array(f.readBytes(name).slice().buffer));
    return { inputIds: ints('input_ids'), logits: f.readFloat32('logits'), greedy: ints('greedy') };
  } finally {
    f.close();
  }
}
