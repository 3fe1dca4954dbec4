/**
 * The embedded model RTN-quantized with the default spec (made once per process) and a prompt, for
 * the GPU tests: the lm_head and embedding in float, or as `intscale quantize` writes them by default
 * (a W8A8 lm_head, an 8-bit embedding table).
 */
import { quantizeModel } from '../../../src/quantize/quantize-model.js';
import { DEFAULT_LM_HEAD, DEFAULT_SPEC } from '../../../src/quantize/recipe.js';
import type { Model } from '../../../src/model/forward.js';
import { repoPath } from '../../helpers/paths.js';

const embedded = new Map<string, { model: Model; prompt: number[] }>();

export function quantizedEmbedded(lmHead: 'float' | 'w8a8' = 'float'): { model: Model; prompt: number[] } {
  let made = embedded.get(lmHead);
  if (!made) {
    const defaults = lmHead === 'w8a8';
    const { loaded } = quantizeModel(repoPath('models/tiny-wikitext'), { method: 'rtn', base: DEFAULT_SPEC, overrides: defaults ? { lmHead: DEFAULT_LM_HEAD } : {}, embedding: defaults ? 'int8' : 'float' });
    made = { model: loaded.model, prompt: loaded.tokenizer!.encode('The game began development in 2010 , carrying over a large portion of the work') };
    embedded.set(lmHead, made);
  }
  return made;
}
