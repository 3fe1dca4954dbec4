/** The quantize flags' recipe: with the flags' defaults it is the library's DEFAULT_RTN_RECIPE (what the benches serve). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { addQuantOptions } from '../../src/cli/commands/quantize.js';
import { recipeFromOptions, type QuantCliOptions } from '../../src/cli/quant-options.js';
import { DEFAULT_RTN_RECIPE } from '../../src/quantize/recipe.js';

test('intscale quantize with no flags makes DEFAULT_RTN_RECIPE; --lm-head float and --embedding float leave it', () => {
  const parse = (...flags: string[]): QuantCliOptions => addQuantOptions(new Command(), ['rtn', 'gptq', 'awq']).exitOverride().parse(flags, { from: 'user' }).opts() as QuantCliOptions;
  assert.deepEqual(recipeFromOptions(parse()), DEFAULT_RTN_RECIPE);
  assert.notDeepEqual(recipeFromOptions(parse('--lm-head', 'float')), DEFAULT_RTN_RECIPE);
  assert.notDeepEqual(recipeFromOptions(parse('--embedding', 'float')), DEFAULT_RTN_RECIPE);
});
