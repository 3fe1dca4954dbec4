/**
 * The embedded model RTN-quantized with the default spec (made once per process) and a prompt, for
 * the GPU tests: the lm_head and embedding in float, or as `intscale quantize` writes them by default
 * (a W8A8 lm_head, an 8-bit embedding table); 'w4a16' is the weight-only variant (float head).
 */
import { quantizeModel } from '../../../src/quantize/quantize-model.js';
import { DEFAULT_LM_HEAD, DEFAULT_SPEC } from '../../../src/quantize/recipe.js';
import type { Model } from '../../../src/model/forward.js';
import { repoPath } from '../../helpers/paths.js';

const embedded = new Map<string, { model: Model; prompt: number[] }>();

export function quantizedEmbedded(variant: 'float' | 'w8a8' | 'w4a16' = 'float'): { model: Model; prompt: number[] } {
  let made = embedded.get(variant);
  if (!made) {
    const defaults = variant === 'w8a8';
    const base = variant === 'w4a16' ? { ...DEFAULT_SPEC, aBits: 16 as const, scale: 'float' as const } : DEFAULT_SPEC;
    const { loaded } = quantizeModel(repoPath('models/tiny-wikitext'), { method: 'rtn', base, overrides: defaults ? { lmHead: DEFAULT_LM_HEAD } : {}, embedding: defaults ? 'int8' : 'float' });
    made = { model: loaded.model, prompt: loaded.tokenizer!.encode('The game began development in 2010 , carrying over a large portion of the work') };
    embedded.set(variant, made);
  }
  return made;
}
