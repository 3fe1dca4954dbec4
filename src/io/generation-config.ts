/**
 * generation_config.json (optional): the sampling defaults and stop tokens a model ships with.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors.js';
import { FieldReader, type Json } from './json-fields.js';

export interface GenerationConfig {
  readonly bosTokenId: number | null;
  /** stop tokens ([] when the file names none). */
  readonly eosTokenIds: readonly number[];
  readonly doSample: boolean | null;
  readonly temperature: number | null;
  readonly topP: number | null;
  readonly topK: number | null;
  readonly maxNewTokens: number | null;
}

export const GENERATION_CONFIG_FILE = 'generation_config.json';

export function parseGenerationConfig(json: unknown, file: string): GenerationConfig {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new InputError(`${file}: expected a JSON object`, { file });
  }
  const f = new FieldReader(json as Json, file);
  const topK = f.optionalNumber('top_k');
  if (topK !== undefined && !(Number.isSafeInteger(topK) && topK >= 0)) {
    throw new InputError(`${file}: "top_k" must be a non-negative integer, got ${topK}`, { file });
  }
  const temperature = f.optionalNumber('temperature');
  if (temperature !== undefined && temperature < 0) {
    throw new InputError(`${file}: "temperature" must be >= 0, got ${temperature}`, { file });
  }
  const topP = f.optionalNumber('top_p');
  if (topP !== undefined && !(topP > 0 && topP <= 1)) {
    throw new InputError(`${file}: "top_p" must be in (0, 1], got ${topP}`, { file });
  }
  return {
    bosTokenId: f.optionalTokenId('bos_token_id') ?? null,
    eosTokenIds: f.tokenIdList('eos_token_id'),
    doSample: f.optionalBool('do_sample') ?? null,
    temperature: temperature ?? null,
    topP: topP ?? null,
    topK: topK ?? null,
    maxNewTokens: f.optionalPositiveInt('max_new_tokens') ?? null,
  };
}

/** generation_config.json in dir, or null when the model ships none. */
export function loadGenerationConfig(dir: string): GenerationConfig | null {
  const file = path.join(dir, GENERATION_CONFIG_FILE);
  if (!fs.existsSync(file)) return null;
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new InputError(`${file}: not valid JSON (${(e as Error).message})`, { file });
  }
  return parseGenerationConfig(json, file);
}
