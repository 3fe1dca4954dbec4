/**
 * The embedded model RTN-quantized with the default spec (made once per process) and a prompt, for
 * the GPU tests: the lm_head in float, or in W8A8 as `intscale quantize` writes it by default.
 */
import { quantizeModel } from '../../../src/quantize/quantize-model.js';
import { DEFAULT_LM_HEAD, DEFAULT_SPEC } from '../../../src/quantize/recipe.js';
import type { Model } from '../../../src/model/forward.js';
import { repoPath } from '../../helpers/paths.js';

const embedded = new Map<string, { model: Model; prompt: number[] }>();

export function quantizedEmbedded(lmHead: 'float' | 'w8a8' = 'float'): { model: Model; prompt: number[] } {
  let made = embedded.get(lmHead);
  if (!made) {
    const overrides = lmHead === 'w8a8' ? { lmHead: DEFAULT_LM_HEAD } : {};
    const { loaded } = quantizeModel(repoPath('models/tiny-wikitext'), { method: 'rtn', base: DEFAULT_SPEC, overrides });
    made = { model: loaded.model, prompt: loaded.tokenizer!.encode('The game began development in 2010 , carrying over a large portion of the work') };
    embedded.set(lmHead, made);
  }
  return made;
}
