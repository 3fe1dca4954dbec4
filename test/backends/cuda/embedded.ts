/** The embedded model RTN-quantized with the default recipe (made once per process) and a prompt, for the GPU tests. */
import { quantizeModel } from '../../../src/quantize/quantize-model.js';
import { DEFAULT_SPEC } from '../../../src/quantize/recipe.js';
import type { Model } from '../../../src/model/forward.js';
import { repoPath } from '../../helpers/paths.js';

let embedded: { model: Model; prompt: number[] } | undefined;

export function quantizedEmbedded(): { model: Model; prompt: number[] } {
  if (!embedded) {
    const { loaded } = quantizeModel(repoPath('models/tiny-wikitext'), { method: 'rtn', base: DEFAULT_SPEC, overrides: {} });
    embedded = { model: loaded.model, prompt: loaded.tokenizer!.encode('The game began development in 2010 , carrying over a large portion of the work') };
  }
  return embedded;
}
